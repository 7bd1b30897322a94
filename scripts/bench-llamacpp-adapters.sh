#!/usr/bin/env bash
# The llama.cpp anchor for `provdb bench adapters` (multi-LoRA serving): the venv of
# scripts/llamacpp-venv.sh and the SmolLM2 GGUF, then llamacpp_adapters.py, which converts the
# PEFT folders to GGUF LoRAs once (cached under ~/.cache/provdb/llamacpp-adapters) and prints one
# JSON object. Arguments go to llamacpp_adapters.py, e.g.
#   scripts/bench-llamacpp-adapters.sh --adapters DIR [--round-robin-dir DIR2] [--threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/llamacpp-venv.sh
bash scripts/fetch-models.sh >/dev/null
exec "$VENV/bin/python" scripts/reference/llamacpp_adapters.py "$@"
