#!/usr/bin/env bash
# The PyTorch + PEFT anchor for `provdb bench train`: installs PyPI torch, peft, transformers and
# gguf (scripts/reference/pytorch-requirements.txt, every package pinned, with --no-deps: see
# that file for why and what is left out) into a venv under ~/.cache/provdb once (about 2.5 GB
# of wheels, a minute or two to download and unpack; 4 GB on disk), then runs
# scripts/reference/peft_train_bench.py with the given arguments, which prints one JSON object.
# `bash scripts/bench-pytorch.sh --install-only` just builds the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PROVDB_PYTORCH_VENV:-$HOME/.cache/provdb/pytorch-venv}"
REQUIREMENTS=scripts/reference/pytorch-requirements.txt
STAMP="$VENV/.provdb-requirements"
if ! grep -v '^#' "$REQUIREMENTS" | cmp -s - "$STAMP" ||
   ! "$VENV/bin/python" -c "import torch, peft, transformers, gguf" >/dev/null 2>&1; then
  echo "bench-pytorch: installing torch, peft, transformers, gguf in $VENV (one time, ~2.5 GB)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --no-deps -r "$REQUIREMENTS" >&2
  grep -v '^#' "$REQUIREMENTS" >"$STAMP"
fi
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi
bash scripts/fetch-models.sh >/dev/null
exec "$VENV/bin/python" scripts/reference/peft_train_bench.py "$@"
