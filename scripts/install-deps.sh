#!/usr/bin/env bash
# Installs what building and testing provdb need beyond the Rust toolchain, and nothing when it
# is there: clang's libclang (bindgen generates the rocksdb crate's bindings against it),
# OpenSSL's headers and socat (https RPC endpoints and their test), the pinned npm packages
# @openzeppelin/merkle-tree that the Merkle tree is cross-checked against (scripts/oz-merkle.sh;
# needs node and npm) and ethers that EIP-712 record signatures are cross-checked against
# (scripts/ethers.sh), and the pinned chain tools solc, anvil and cast
# (scripts/chain-tools.sh), and for the HTTP server's tests OpenAI's Python client
# (scripts/openai-client.sh) and Debian's chromium with npm playwright-core
# (scripts/browser-deps.sh).
set -euo pipefail

have_libclang() {
  ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1
}

# Debian packages: clang's libclang (bindgen), OpenSSL's headers with pkg-config (TLS for https
# RPC endpoints, through native-tls), and socat (the https test puts a TLS front on anvil).
missing=()
have_libclang || missing+=(clang libclang-dev)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev pkg-config)
command -v socat >/dev/null || missing+=(socat)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: cargo not found; install Rust (rustup) first" >&2; exit 1; }
bash "$(dirname "${BASH_SOURCE[0]}")/oz-merkle.sh" --install
bash "$(dirname "${BASH_SOURCE[0]}")/ethers.sh" --install
bash "$(dirname "${BASH_SOURCE[0]}")/chain-tools.sh" --install
bash "$(dirname "${BASH_SOURCE[0]}")/openai-client.sh" --install
bash "$(dirname "${BASH_SOURCE[0]}")/browser-deps.sh" >/dev/null
