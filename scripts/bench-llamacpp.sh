#!/usr/bin/env bash
# The llama.cpp anchor for `provdb bench generate`: installs llama-cpp-python (pinned; it builds
# llama.cpp from source, about 10 minutes on 2 cores, once) with the reference script's
# requirements into a venv under ~/.cache/provdb, then prints llama.cpp's prefill and decode
# tokens/s on the SmolLM2 GGUF as one JSON object. Arguments go to llamacpp_bench.py
# (e.g. --threads 1 2 --reps 3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PROVDB_LLAMACPP_VENV:-$HOME/.cache/provdb/llamacpp-venv}"
if ! "$VENV/bin/python" -c "import llama_cpp, numpy, gguf, tokenizers" >/dev/null 2>&1; then
  echo "bench-llamacpp: building llama-cpp-python in $VENV (one time, ~10 minutes)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r scripts/reference/requirements.txt >&2
  CMAKE_ARGS="-DGGML_NATIVE=ON" nice -n 10 "$VENV/bin/pip" install -q llama-cpp-python==0.3.36 >&2
fi
bash scripts/fetch-models.sh >/dev/null
exec "$VENV/bin/python" scripts/reference/llamacpp_bench.py "$@"
