#!/usr/bin/env bash
# Installs what building and testing provdb need beyond the Rust toolchain, and nothing when it
# is there: clang's libclang (bindgen generates the rocksdb crate's bindings against it), and the
# pinned npm package @openzeppelin/merkle-tree that the Merkle tree is cross-checked against
# (scripts/oz-merkle.sh; needs node and npm), and the pinned chain tools solc, anvil and cast
# (scripts/chain-tools.sh), and for the HTTP server's tests OpenAI's Python client
# (scripts/openai-client.sh) and Debian's chromium with npm playwright-core
# (scripts/browser-deps.sh).
set -euo pipefail

have_libclang() {
  ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1
}

if ! have_libclang; then
  echo "install-deps: installing clang and libclang-dev (for bindgen)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-dev >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: cargo not found; install Rust (rustup) first" >&2; exit 1; }
bash "$(dirname "${BASH_SOURCE[0]}")/oz-merkle.sh" --install
bash "$(dirname "${BASH_SOURCE[0]}")/chain-tools.sh" --install
bash "$(dirname "${BASH_SOURCE[0]}")/openai-client.sh" --install
bash "$(dirname "${BASH_SOURCE[0]}")/browser-deps.sh" >/dev/null
