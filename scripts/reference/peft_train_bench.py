"""The PyTorch + PEFT anchor of `provdb bench train` (run through scripts/bench-pytorch.sh).

SmolLM2-135M-Instruct is loaded with transformers from the same GGUF file provdb trains on
(`gguf_file=`: transformers dequantizes every tensor to float32 with the `gguf` package and
undoes llama.cpp's rotary row permutation of q/k), and Hugging Face PEFT puts a LoRA adapter on
it. Two modes, each printing one JSON object on stdout:

- `train` (default): times the training step provdb's bench times: batch 1, the given token
  sequences (`--tokens FILE`, JSON `{"sequences": [[ids], ...]}`, written by provdb so both
  sides read the same ids), next-token cross-entropy over every position, backward, global-norm
  clipping at 1.0 and an AdamW step (torch.optim.AdamW, weight decay 0), torch threads =
  `--threads`. The first `--warmup` steps are not counted. Per-step seconds, tokens/s at the
  median and the mean step, the first step's loss (the base model's, B = 0 on both sides) and
  the versions.
- `check`: logits of `--prompt FILE` (JSON `{"tokens": [ids]}`) from the GGUF base, then from
  `PeftModel.from_pretrained(base, --adapter DIR)` (a folder provdb wrote); writes the base
  logits and the adapter's delta (with adapter minus base) as raw little-endian float32
  `[tokens, vocab]` to `--out-base` and `--out-delta`, for provdb to compare with its own.
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings

# Nothing is fetched from the Hub: the model is the local GGUF, the adapter a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# transformers 5 warns that PEFT reads the deprecated `is_gradient_checkpointing` (which is
# False here: nothing is checkpointed on either side).
warnings.filterwarnings("ignore", category=FutureWarning)


def load_base(model_path, threads):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    torch.set_num_threads(threads)
    folder, name = os.path.split(os.path.abspath(model_path))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.config.use_cache = False
    return model


def versions():
    import gguf  # noqa: F401  (transformers reads the GGUF through it)
    import peft
    import torch
    import transformers
    from importlib.metadata import version

    return {
        "torch": torch.__version__,
        "peft": peft.__version__,
        "transformers": transformers.__version__,
        "gguf": version("gguf"),
        "python": sys.version.split()[0],
        "torch_threads": torch.get_num_threads(),
        "torch_parallel": torch.__config__.parallel_info().splitlines()[-1].strip(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def train(args):
    import torch
    from peft import LoraConfig, get_peft_model

    with open(args.tokens) as f:
        sequences = json.load(f)["sequences"]
    if len(sequences) < args.warmup + args.steps:
        sys.exit(f"need {args.warmup + args.steps} sequences, got {len(sequences)}")
    torch.manual_seed(0)
    model = load_base(args.model, args.threads)
    config = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        target_modules=args.targets.split(","),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, weight_decay=0.0)
    step_seconds, losses = [], []
    for i in range(args.warmup + args.steps):
        ids = torch.tensor([sequences[i]], dtype=torch.long)
        started = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - started
        losses.append(loss.item())
        if i >= args.warmup:
            step_seconds.append(seconds)
        print(f"pytorch step {i + 1}: loss {losses[-1]:.4f}, {seconds:.2f} s", file=sys.stderr)
    tokens = len(sequences[0])
    median = statistics.median(step_seconds)
    mean = statistics.fmean(step_seconds)
    print(
        json.dumps(
            {
                "sequence_length": tokens,
                "warmup_steps": args.warmup,
                "steps": args.steps,
                "step_seconds": step_seconds,
                "tokens_per_second": tokens / median,
                "tokens_per_second_mean": tokens / mean,
                "tokens_per_second_best": tokens / min(step_seconds),
                "first_loss": losses[0],
                "losses": losses,
                "trainable_parameters": sum(p.numel() for p in trainable),
                "rank": args.rank,
                "alpha": args.alpha,
                "targets": args.targets.split(","),
                "versions": versions(),
            }
        )
    )


def check(args):
    import numpy as np
    import torch
    from peft import PeftModel

    with open(args.prompt) as f:
        tokens = json.load(f)["tokens"]
    model = load_base(args.model, args.threads)
    model.eval()
    ids = torch.tensor([tokens], dtype=torch.long)
    with torch.no_grad():
        base = model(input_ids=ids).logits[0].float().numpy()
        adapted_model = PeftModel.from_pretrained(model, args.adapter)
        adapted_model.eval()
        adapted = adapted_model(input_ids=ids).logits[0].float().numpy()
    delta = adapted - base
    base.astype("<f4").tofile(args.out_base)
    delta.astype("<f4").tofile(args.out_delta)
    print(
        json.dumps(
            {
                "tokens": len(tokens),
                "vocab": int(base.shape[1]),
                "delta_max_abs": float(np.abs(delta).max()),
                "adapter_modules": sorted(adapted_model.peft_config["default"].target_modules),
                "versions": versions(),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["train", "check"], default="train")
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", help="train: JSON {'sequences': [[ids], ...]}")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--prompt", help="check: JSON {'tokens': [ids]}")
    parser.add_argument("--adapter", help="check: the PEFT folder provdb wrote")
    parser.add_argument("--out-base", help="check: base logits, f32 little-endian")
    parser.add_argument("--out-delta", help="check: adapter delta, f32 little-endian")
    args = parser.parse_args()
    if args.mode == "train":
        if not args.tokens:
            parser.error("train needs --tokens")
        train(args)
    else:
        if not (args.prompt and args.adapter and args.out_base and args.out_delta):
            parser.error("check needs --prompt, --adapter, --out-base and --out-delta")
        check(args)


if __name__ == "__main__":
    main()
