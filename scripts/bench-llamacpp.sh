#!/usr/bin/env bash
# The llama.cpp anchor for `provdb bench generate`: installs llama-cpp-python (pinned; it builds
# llama.cpp from source, about 10 minutes on 2 cores, once) with the reference script's
# requirements into a venv under ~/.cache/provdb (scripts/llamacpp-venv.sh), then prints
# llama.cpp's prefill and decode tokens/s on the SmolLM2 GGUF as one JSON object. Arguments go
# to llamacpp_bench.py (e.g. --threads 1 2 --reps 3).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/llamacpp-venv.sh
bash scripts/fetch-models.sh >/dev/null
exec "$VENV/bin/python" scripts/reference/llamacpp_bench.py "$@"
