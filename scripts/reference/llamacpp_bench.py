#!/usr/bin/env python3
"""llama.cpp speed anchor for SmolLM2-135M-Instruct Q4_1 on this machine (needs llama-cpp-python).

For each thread count: prompt eval (prefill) of a 128-token prompt in one batch, then 128 greedy
decode steps of one token each. Reports tokens/s by wall clock around llm.eval() and by
llama.cpp's own perf counters; median of --reps runs after one warm-up. Prints one JSON object.

  python scripts/reference/llamacpp_bench.py [--threads 1 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import DEFAULT_MODELS, LONG_TEXT, open_llamacpp  # noqa: E402

N_PROMPT = 128
N_DECODE = 128


def run_once(llm, llama_cpp, prompt: list[int]) -> dict:
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    tok = int(llm.scores[llm.n_tokens - 1].argmax())
    t2 = time.perf_counter()
    for _ in range(N_DECODE):
        llm.eval([tok])
        tok = int(llm.scores[llm.n_tokens - 1].argmax())
    t3 = time.perf_counter()
    perf = llama_cpp.llama_perf_context(llm.ctx)
    return {
        "prompt_tps_wall": N_PROMPT / (t1 - t0),
        "decode_tps_wall": N_DECODE / (t3 - t2),
        "prompt_tps_llama": 1e3 * perf.n_p_eval / perf.t_p_eval_ms if perf.t_p_eval_ms else None,
        "decode_tps_llama": 1e3 * perf.n_eval / perf.t_eval_ms if perf.t_eval_ms else None,
        "n_p_eval": perf.n_p_eval,
        "n_eval": perf.n_eval,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=DEFAULT_MODELS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import llama_cpp

    out = {"llama_cpp_python": llama_cpp.__version__, "model": args.model.name,
           "n_prompt": N_PROMPT, "n_decode": N_DECODE, "cpu_count": os.cpu_count(), "runs": {}}
    for nt in args.threads:
        # extra buffer types off: llama.cpp's AMX path segfaults on this machine (see open_llamacpp)
        llm = open_llamacpp(args.model, n_ctx=512, n_batch=512, n_ubatch=512,
                            n_threads=nt, n_threads_batch=nt, logits_all=False)
        prompt = llm.tokenize(LONG_TEXT.encode(), add_bos=False, special=False)[:N_PROMPT]
        assert len(prompt) == N_PROMPT
        run_once(llm, llama_cpp, prompt)  # warm-up (page in weights, caches)
        runs = [run_once(llm, llama_cpp, prompt) for _ in range(args.reps)]
        med = {k: round(statistics.median(r[k] for r in runs), 1) for k in
               ("prompt_tps_wall", "decode_tps_wall", "prompt_tps_llama", "decode_tps_llama")}
        med["n_p_eval"], med["n_eval"] = runs[0]["n_p_eval"], runs[0]["n_eval"]
        out["runs"][f"threads={nt}"] = med
        print(f"threads={nt}: {med}", file=sys.stderr, flush=True)
        del llm
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
