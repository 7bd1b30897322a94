//! provdb-inference: models on candle.
//!
//! Will own: the MiniLM-class sentence embedder, the LLaMA-family generator (GGUF and
//! safetensors) with batched decoding and streaming, PEFT LoRA adapters (load, byte-bounded
//! cache, mixed-adapter batches), and later LoRA training. Depends on kernels.
