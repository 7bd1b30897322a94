#!/usr/bin/env bash
# The llama.cpp anchors' venv: ${PROVDB_LLAMACPP_VENV:-~/.cache/provdb/llamacpp-venv} with
# llama-cpp-python 0.3.36 (built from source with GGML_NATIVE: about 10 minutes on 2 cores, once)
# and scripts/reference/requirements.txt. Sourced by scripts/bench-llamacpp*.sh, which then run
# "$VENV/bin/python"; `bash scripts/llamacpp-venv.sh` alone just builds it. Prints nothing on stdout.
VENV="${PROVDB_LLAMACPP_VENV:-$HOME/.cache/provdb/llamacpp-venv}"
if ! "$VENV/bin/python" -c "import llama_cpp, numpy, gguf, tokenizers" >/dev/null 2>&1; then
  echo "llamacpp-venv: building llama-cpp-python in $VENV (one time, ~10 minutes)" >&2
  _reqs="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/reference/requirements.txt"
  if ! { python3 -m venv "$VENV" &&
         "$VENV/bin/pip" install -q -r "$_reqs" &&
         CMAKE_ARGS="-DGGML_NATIVE=ON" nice -n 10 "$VENV/bin/pip" install -q llama-cpp-python==0.3.36
       } >&2; then
    echo "llamacpp-venv: installing into $VENV failed" >&2
    return 1 2>/dev/null || exit 1
  fi
fi
