#!/usr/bin/env python3
"""llama.cpp anchor for `provdb bench adapters`: multi-LoRA serving on SmolLM2-135M-Instruct Q4_1.

llama.cpp reads LoRA adapters only as GGUF, so each Hugging Face PEFT folder
(adapter_config.json + adapter_model.safetensors) is first converted to a GGUF LoRA and cached
in --cache-dir (keyed by folder name and a hash of its config and file stamp, so 1,000 adapters
convert once). PEFT keeps q_proj/k_proj rows in HF's rotate-half order; the base GGUF has them
permuted per head to adjacent pairs (llama.cpp's "normal" RoPE), so lora_B of q and k gets the
same row permutation. Tensors keep their dtype (F32, F16 or BF16); the scale is llama.cpp's
alpha/rank with adapter.lora.alpha = lora_alpha (times sqrt(r) for rsLoRA).

Measured (greedy, a fixed 32-token prompt, --tokens new tokens per request of which the prefill
yields the first; wall clock around the llama.cpp calls, best of --reps after one warm-up):
  base    8 requests without adapter in one llama_batch (8 sequences, n_seq_max=8), and the same
          8 requests one after another (base_sequential_tok_s)
  mixed   8 requests on 8 distinct adapters (the first 8 folders of --adapters, sorted), one
          after another, each setting its adapter on the context first: llama.cpp runs one
          adapter set per context, so it cannot batch them. Adapters are initialised up front.
  cold    llama_adapter_lora_init of one converted GGUF (page-cached) until it returns: p50 over
          the 8 mixed adapters' first inits and two init+free rounds (24 samples)
  round robin (--round-robin-dir): request i uses adapter i mod count; at most --cache adapters
          stay initialised (LRU; the evicted one is freed). Per request: init if not cached, set,
          prefill, --rr-tokens new tokens. Each rep starts with an empty cache.
tokens/s counts generated tokens over the wall time of the whole set (prefill, swaps included).
--check also verifies the conversion: a copy of the first adapter with every lora_B zeroed must
leave the logits bit-identical, and the adapter itself must change them.
Prints one JSON object on stdout; diagnostics go to stderr.

  python scripts/reference/llamacpp_adapters.py --adapters DIR [--round-robin-dir DIR2]
      [--threads 2] [--tokens 32] [--requests 200] [--rr-tokens 8] [--cache 64] [--reps 2] [--check]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import math
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the repo
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import DEFAULT_MODELS, LONG_TEXT  # noqa: E402

N_PROMPT = 32
N_REQUESTS = 8
CONVERTER_VERSION = 1  # part of the cache key: bump when the GGUF layout written here changes
# PEFT module -> GGUF tensor of the base model
MODULES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
           "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
PEFT_KEY = re.compile(r"base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight")
ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}  # BF16 kept as raw bits


class AdapterError(Exception):
    """A PEFT folder this script cannot convert (bad or unsupported)."""


def log(msg: str) -> None:
    print(f"llamacpp_adapters: {msg}", file=sys.stderr, flush=True)


# --- PEFT -> GGUF LoRA ------------------------------------------------------------------------


def base_hparams(model: Path) -> dict:
    """Layer count, head counts and each module's (out, in) shape, from the base GGUF."""
    import gguf

    r = gguf.GGUFReader(str(model))
    meta = lambda k: r.fields[k].parts[r.fields[k].data[0]][0].item()  # noqa: E731
    shapes = {t.name: tuple(int(n) for n in reversed(t.shape)) for t in r.tensors}
    return {"n_layer": meta("llama.block_count"), "n_head": meta("llama.attention.head_count"),
            "n_head_kv": meta("llama.attention.head_count_kv"),
            "shape": {m: shapes[f"blk.0.{g}.weight"] for m, g in MODULES.items()}}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise AdapterError(f"{path}: bad safetensors header ({e})") from None
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = ST_DTYPES.get(info["dtype"])
        if dt is None:
            raise AdapterError(f"{path}: tensor {name} has dtype {info['dtype']} (want F32, F16 or BF16)")
        start, end = info["data_offsets"]
        count = math.prod(info["shape"])
        if end - start != count * np.dtype(dt).itemsize or 8 + n + end > len(raw):
            raise AdapterError(f"{path}: tensor {name} has a bad size or offset")
        out[name] = np.frombuffer(raw, dt, count, 8 + n + start).reshape(info["shape"])
    return out


def rope_permute(b: np.ndarray, n_head: int) -> np.ndarray:
    """Rows of a q/k lora_B from HF's rotate-half order to the GGUF's adjacent pairs: within each
    head, new row 2*i + p is old row i + p*half (half = head_dim / 2)."""
    out, r = b.shape
    return b.reshape(n_head, 2, out // n_head // 2, r).swapaxes(1, 2).reshape(out, r)


def convert(folder: Path, hp: dict, dst: Path, zero_b: bool = False) -> None:
    """Writes the GGUF LoRA of a PEFT folder to dst (zero_b: every lora_B zeroed, for --check)."""
    import gguf

    try:
        cfg = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError) as e:
        raise AdapterError(f"{folder}: cannot read adapter_config.json ({e})") from None
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), (int, float)) for k in ("r", "lora_alpha")):
        raise AdapterError(f"{folder}: adapter_config.json needs numeric r and lora_alpha")
    unsupported = {"peft_type": cfg.get("peft_type") != "LORA", "use_dora": cfg.get("use_dora"),
                   "bias": cfg.get("bias", "none") != "none", "fan_in_fan_out": cfg.get("fan_in_fan_out"),
                   "alpha_pattern": cfg.get("alpha_pattern")}
    if any(unsupported.values()):
        raise AdapterError(f"{folder}: unsupported adapter_config.json: "
                           + ", ".join(f"{k}={cfg.get(k)!r}" for k, v in unsupported.items() if v))
    if not (folder / "adapter_model.safetensors").is_file():
        raise AdapterError(f"{folder}: no adapter_model.safetensors")
    alpha = float(cfg["lora_alpha"])
    if cfg.get("use_rslora"):  # PEFT scales by alpha/sqrt(r), llama.cpp by alpha/r
        if cfg.get("rank_pattern"):
            raise AdapterError(f"{folder}: use_rslora with a rank_pattern is not supported")
        alpha *= math.sqrt(cfg["r"])
    pairs: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for name, t in read_safetensors(folder / "adapter_model.safetensors").items():
        m = PEFT_KEY.fullmatch(name)
        if not m or m[2] not in MODULES or int(m[1]) >= hp["n_layer"]:
            raise AdapterError(f"{folder}: unexpected tensor {name}")
        pairs.setdefault((int(m[1]), m[2]), {})[m[3]] = t
    if not pairs:
        raise AdapterError(f"{folder}: no LoRA tensors")
    w = gguf.GGUFWriter(str(dst), "llama")
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    for (layer, mod), ab in sorted(pairs.items()):
        a, b = ab.get("A"), ab.get("B")
        out, inp = hp["shape"][mod]
        if a is None or b is None or a.ndim != 2 or b.ndim != 2 or a.shape[1] != inp \
                or b.shape[0] != out or a.shape[0] != b.shape[1]:
            raise AdapterError(f"{folder}: layer {layer} {mod}: lora_A {None if a is None else a.shape}, "
                               f"lora_B {None if b is None else b.shape}; want [r, {inp}] and [{out}, r]")
        if mod in ("q_proj", "k_proj"):
            b = rope_permute(b, hp["n_head"] if mod == "q_proj" else hp["n_head_kv"])
        if zero_b:
            b = np.zeros_like(b)
        for suffix, t in (("lora_a", a), ("lora_b", b)):
            raw = gguf.GGMLQuantizationType.BF16 if t.dtype == np.uint16 else None
            w.add_tensor(f"blk.{layer}.{MODULES[mod]}.weight.{suffix}", np.ascontiguousarray(t), raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def cached_gguf(folder: Path, hp: dict, cache_dir: Path) -> tuple[Path, float | None]:
    """The converted GGUF of a PEFT folder, converting on a cache miss; and the conversion ms."""
    try:
        st = (folder / "adapter_model.safetensors").stat()
        key = (folder / "adapter_config.json").read_bytes() + f"|{st.st_size}|{st.st_mtime_ns}|{CONVERTER_VERSION}".encode()
    except OSError as e:
        raise AdapterError(f"{folder}: {e}") from None
    path = cache_dir / f"{folder.name}-{hashlib.sha256(key).hexdigest()[:16]}.gguf"
    if path.exists():
        return path, None
    tmp = path.with_suffix(".tmp")
    t0 = time.perf_counter()
    try:
        convert(folder, hp, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path, (time.perf_counter() - t0) * 1e3


def adapter_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise AdapterError(f"{root}: not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise AdapterError(f"{root}: no adapter folders")
    return folders


# --- llama.cpp --------------------------------------------------------------------------------


class Context:
    """A llama_context with a reusable llama_batch; greedy generation over n_seq sequences."""

    def __init__(self, L, model, n_seq: int, n_threads: int, n_new_max: int):
        self.L = L
        p = L.llama_context_default_params()
        p.n_seq_max = n_seq
        p.n_ctx = n_seq * 256 * math.ceil((N_PROMPT + n_new_max + 1) / 256)  # KV cells per sequence
        p.n_batch = p.n_ubatch = max(512, n_seq * N_PROMPT)
        p.n_threads = p.n_threads_batch = n_threads
        self.ctx = L.llama_init_from_model(model, p)
        if not self.ctx:
            raise RuntimeError("llama_init_from_model failed")
        self.mem = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(p.n_batch, 0, 1)
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))

    def set_adapter(self, adapter) -> None:
        """Makes `adapter` (or none) the context's only LoRA, at scale 1."""
        L = self.L
        if adapter is None:
            rc = L.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            rc = L.llama_set_adapters_lora(self.ctx, (L.llama_adapter_lora_p_ctypes * 1)(adapter), 1,
                                           (ctypes.c_float * 1)(1.0))
        if rc != 0:
            raise RuntimeError(f"llama_set_adapters_lora returned {rc}")

    def _decode(self, entries) -> None:  # entries: (token, pos, seq_id, wants_logits)
        b = self.batch
        for i, (tok, pos, seq, out) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, out
            b.seq_id[i][0] = seq
        b.n_tokens = len(entries)
        rc = self.L.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def logits(self, i: int) -> np.ndarray:
        return np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,))

    def generate(self, prompt: list[int], n_new: int, n_seq: int = 1) -> list[list[int]]:
        """n_seq copies of the prompt as sequences 0..n_seq-1 of one batch, n_new greedy tokens each."""
        self.L.llama_memory_clear(self.mem, True)
        n = len(prompt)
        self._decode([(t, j, s, j == n - 1) for s in range(n_seq) for j, t in enumerate(prompt)])
        nxt = [int(self.logits(s * n + n - 1).argmax()) for s in range(n_seq)]
        out = [[t] for t in nxt]
        for step in range(n_new - 1):
            self._decode([(nxt[s], n + step, s, True) for s in range(n_seq)])
            nxt = [int(self.logits(s).argmax()) for s in range(n_seq)]
            for s in range(n_seq):
                out[s].append(nxt[s])
        return out


def load_adapter(L, model, path: Path):
    a = L.llama_adapter_lora_init(model, str(path).encode())
    if not a:
        raise AdapterError(f"{path}: llama_adapter_lora_init failed (see llama.cpp's error above)")
    return a


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def round_robin(L, model, ctx: Context, prompt, ggufs: list[Path], args) -> dict:
    """One rep: --requests requests, adapter i mod count, LRU of --cache initialised adapters."""
    cache: OrderedDict[Path, object] = OrderedDict()
    lat, misses = [], 0
    t_start = time.perf_counter()
    for i in range(args.requests):
        t0 = time.perf_counter()
        path = ggufs[i % len(ggufs)]
        if path in cache:
            cache.move_to_end(path)
        else:
            misses += 1
            if len(cache) >= args.cache:
                ctx.set_adapter(None)  # never free an adapter the context still points to
                L.llama_adapter_lora_free(cache.popitem(last=False)[1])
            cache[path] = load_adapter(L, model, path)
        ctx.set_adapter(cache[path])
        ctx.generate(prompt, args.rr_tokens)
        lat.append((time.perf_counter() - t0) * 1e3)
    wall = time.perf_counter() - t_start
    ctx.set_adapter(None)
    for a in cache.values():
        L.llama_adapter_lora_free(a)
    return {"requests": args.requests, "adapters": len(ggufs), "cache": args.cache, "misses": misses,
            "rr_tokens": args.rr_tokens, "requests_per_s": round(args.requests / wall, 2),
            "tok_s": round(args.requests * args.rr_tokens / wall, 1),
            "latency_ms_p50": round(pct(lat, 0.5), 1), "latency_ms_p99": round(pct(lat, 0.99), 1)}


def self_check(L, model, ctx: Context, prompt, folder: Path, gguf_path: Path, hp: dict) -> dict:
    """A zero-lora_B copy of the adapter must leave the logits bit-identical; the adapter must not."""
    def last_logits(adapter):
        ctx.set_adapter(adapter)
        ctx.L.llama_memory_clear(ctx.mem, True)
        ctx._decode([(t, j, 0, j == len(prompt) - 1) for j, t in enumerate(prompt)])
        return ctx.logits(len(prompt) - 1).copy()

    with tempfile.TemporaryDirectory(prefix="provdb-lora-check-") as tmp:
        zero_path = Path(tmp) / "zero.gguf"
        convert(folder, hp, zero_path, zero_b=True)
        zero, real = load_adapter(L, model, zero_path), load_adapter(L, model, gguf_path)
        base, with_zero, with_real = last_logits(None), last_logits(zero), last_logits(real)
        ctx.set_adapter(None)
        L.llama_adapter_lora_free(zero)
        L.llama_adapter_lora_free(real)
    res = {"adapter": folder.name, "zero_b_identical": bool(np.array_equal(base, with_zero)),
           "adapter_max_abs_logit_change": round(float(np.abs(with_real - base).max()), 4)}
    log(f"check: {res}")
    if not res["zero_b_identical"] or res["adapter_max_abs_logit_change"] == 0:
        raise SystemExit("llamacpp_adapters: --check failed")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--adapters", type=Path, required=True, help="folder of PEFT LoRA folders (8 or more)")
    ap.add_argument("--round-robin-dir", type=Path, help="folder of PEFT LoRA folders for the round robin")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODELS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "provdb" / "llamacpp-adapters")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per request (base, mixed)")
    ap.add_argument("--requests", type=int, default=200, help="round-robin requests")
    ap.add_argument("--rr-tokens", type=int, default=8, help="new tokens per round-robin request")
    ap.add_argument("--cache", type=int, default=64, help="adapters kept initialised in the round robin")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="also run the zero-lora_B sanity check")
    args = ap.parse_args()
    if not args.model.is_file():
        sys.exit(f"llamacpp_adapters: {args.model} missing: run scripts/fetch-models.sh first")
    if min(args.threads, args.tokens, args.requests, args.rr_tokens, args.cache, args.reps) < 1:
        sys.exit("llamacpp_adapters: --threads, --tokens, --requests, --rr-tokens, --cache, --reps must be >= 1")
    try:
        run(args)
    except AdapterError as e:
        sys.exit(f"llamacpp_adapters: error: {e}")


def run(args) -> None:
    import llama_cpp as L
    import llama_cpp._logger

    llama_cpp._logger.set_verbose(False)  # llama.cpp's own log: errors only
    hp = base_hparams(args.model)
    mixed_dirs = adapter_folders(args.adapters)[:N_REQUESTS]
    if len(mixed_dirs) < N_REQUESTS:
        raise AdapterError(f"{args.adapters}: {len(mixed_dirs)} adapter folders, need {N_REQUESTS}")
    rr_dirs = adapter_folders(args.round_robin_dir) if args.round_robin_dir else []
    rr_dirs = rr_dirs[:args.requests]  # request i uses folder i mod count: only these are touched
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    convert_ms = []
    ggufs = []
    for i, d in enumerate(mixed_dirs + rr_dirs):
        path, ms = cached_gguf(d, hp, args.cache_dir)
        ggufs.append(path)
        if ms is not None:
            convert_ms.append(ms)
        if (i + 1) % 100 == 0:
            log(f"converted/cached {i + 1}/{len(mixed_dirs) + len(rr_dirs)} adapters")
    mixed_ggufs, rr_ggufs = ggufs[:N_REQUESTS], ggufs[N_REQUESTS:]

    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.use_extra_bufts = False  # the AMX path segfaults on Q4_1 here (see make_fixtures.open_llamacpp)
    model = L.llama_model_load_from_file(str(args.model).encode(), mp)
    if not model:
        sys.exit(f"llamacpp_adapters: cannot load {args.model}")
    ctx8 = Context(L, model, N_REQUESTS, args.threads, args.tokens)
    ctx1 = Context(L, model, 1, args.threads, max(args.tokens, args.rr_tokens))
    buf = (L.llama_token * 4096)()
    n = L.llama_tokenize(L.llama_model_get_vocab(model), LONG_TEXT.encode(), len(LONG_TEXT.encode()), buf, 4096, False, False)
    assert n >= N_PROMPT, n
    prompt = list(buf[:N_PROMPT])

    # cold load: the 8 mixed adapters initialised up front are the first samples; then re-inits
    loaded, load_ms = [], []
    for p in mixed_ggufs:
        load_ms.append(timed(lambda: loaded.append(load_adapter(L, model, p))) * 1e3)
    for _ in range(2):
        for p in mixed_ggufs:
            t0 = time.perf_counter()
            a = load_adapter(L, model, p)
            load_ms.append((time.perf_counter() - t0) * 1e3)
            L.llama_adapter_lora_free(a)
    check = self_check(L, model, ctx1, prompt, mixed_dirs[0], mixed_ggufs[0], hp) if args.check else None

    def base_batched():
        return ctx8.generate(prompt, args.tokens, N_REQUESTS)

    def base_sequential():
        ctx1.set_adapter(None)
        return [ctx1.generate(prompt, args.tokens)[0] for _ in range(N_REQUESTS)]

    def mixed():
        outs = []
        for a in loaded:
            ctx1.set_adapter(a)
            outs.append(ctx1.generate(prompt, args.tokens)[0])
        return outs

    base_batched(), mixed()  # warm-up
    best = {}
    for rep in range(args.reps):
        for name, fn in (("base", base_batched), ("base_sequential", base_sequential), ("mixed", mixed)):
            outs = []
            tps = N_REQUESTS * args.tokens / timed(lambda: outs.append(fn()))
            best[name] = max(best.get(name, 0.0), tps)
            best[name + "_outs"] = outs[0]
        log(f"rep {rep + 1}: " + ", ".join(f"{k} {best[k]:.1f} tok/s (best so far)" for k in ("base", "base_sequential", "mixed")))
    base_seq_outs = best["base_sequential_outs"]
    changed = sum(o != base_seq_outs[0] for o in best["mixed_outs"])
    same_batched = sum(o == base_seq_outs[0] for o in best["base_outs"])
    log(f"greedy outputs: {same_batched}/{N_REQUESTS} batched base = sequential base; "
        f"{changed}/{N_REQUESTS} adapters changed the output")
    ctx1.set_adapter(None)
    for a in loaded:
        L.llama_adapter_lora_free(a)

    rr = None
    if rr_ggufs:
        for rep in range(args.reps):
            r = round_robin(L, model, ctx1, prompt, rr_ggufs, args)
            log(f"round robin rep {rep + 1}: {r}")
            rr = r if rr is None or r["requests_per_s"] > rr["requests_per_s"] else rr
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if rr is not None:
        rr["peak_rss_mb"] = peak_rss_mb
    out = {"llamacpp": L.__version__, "model": args.model.name, "threads": args.threads,
           "tokens": args.tokens, "prompt_tokens": N_PROMPT, "requests": N_REQUESTS,
           "base_mode": f"batched: one llama_batch of {N_REQUESTS} sequences (n_seq_max={N_REQUESTS})",
           "base_tok_s": round(best["base"], 1), "base_sequential_tok_s": round(best["base_sequential"], 1),
           "mixed_tok_s": round(best["mixed"], 1), "mixed_vs_base_ratio": round(best["mixed"] / best["base"], 3),
           "mixed_vs_base_sequential_ratio": round(best["mixed"] / best["base_sequential"], 3),
           "cold_load_ms_p50": round(statistics.median(load_ms), 2), "cold_load_samples": len(load_ms),
           "adapter_gguf_mb": round(mixed_ggufs[0].stat().st_size / 2**20, 2),
           "convert_ms_p50": round(statistics.median(convert_ms), 1) if convert_ms else None,
           "round_robin": rr, "peak_rss_mb": peak_rss_mb, "reps": args.reps, "check": check}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
