#!/usr/bin/env bash
# Builds what a GPU session needs into .gpu/ (git-ignored; pass it to the device tool as
# `carry: [".gpu"]`), on a machine with crates.io and PyPI. The device machine has no network
# and only its own PyTorch, so the harness binary is built here against the same libtorch
# release as the device's torch, and run there against the device's libraries.
#
#   bash scripts/gpu/build.sh 2.11.0+cu130     # the device's `python3 -c "import torch; print(torch.__version__)"`
#   device: bash scripts/gpu/run.sh parity     # then generate, then train; with .gpu/ carried
#
# Which tch goes with which libtorch: tch checks the libtorch version it builds against, and a
# binary built against another release fails at the first tensor on the device ("incoherent
# element sizes in bytes", seen with a 2.13 build on a 2.11 device). Known pairs (tch's
# releases): torch 2.11.x -> tch/torch-sys 0.24.0, torch 2.13.x -> 0.26.0 (the project's pin).
# No tch release targets 2.12.
#
# Steps: (1) the torch wheel of that version from PyPI, unpacked (headers and libraries to link
# against; its CUDA libraries are not needed here: `TCH_LINK_CUDA=1` links libtorch.so and lets
# its CUDA dependencies resolve on the device); (2) a git worktree of HEAD with the tch pins
# changed (its meta.json therefore says dirty: true); (3) `cargo build --release --bin harness`
# in the project's target dir; (4) .gpu/: the stripped binary, make_models.py, SmolLM2's
# tokenizer files and config (from setup), BUILD.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPS="${HARNESS_DEPS_DIR:-$ROOT/.deps}"
PY="${PYTHON:-python3}"
die() { printf 'gpu build: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'gpu build: %s\n' "$*" >&2; }

DEVICE_TORCH="${1:-}"
[ -n "$DEVICE_TORCH" ] || die "usage: build.sh TORCH_VERSION (the device's torch.__version__, e.g. 2.11.0+cu130)"
BASE="${DEVICE_TORCH%%+*}"
case "$BASE" in
  2.11.*) TCH=0.24.0 ;;
  2.13.*) TCH=0.26.0 ;;
  *) die "torch $DEVICE_TORCH has no matching tch release known here (2.11.x -> tch 0.24.0, 2.13.x -> tch 0.26.0)" ;;
esac
[ -f "$DEPS/models/smollm2-135m-instruct/tokenizer.json" ] || die "run scripts/setup.sh first (SmolLM2's tokenizer is copied from it)"

WORK="$DEPS/gpu-build/torch-$BASE"
if [ ! -f "$WORK/torch/torch/lib/libtorch_cpu.so" ]; then
  say "downloading torch==$BASE from PyPI (headers and libraries to link against)"
  rm -rf "$WORK.tmp"; mkdir -p "$WORK.tmp/wheel"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$WORK.tmp/wheel" "torch==$BASE"
  "$PY" - "$WORK.tmp" <<'PYEOF'
import glob, sys, zipfile
work = sys.argv[1]
with zipfile.ZipFile(glob.glob(work + "/wheel/torch-*.whl")[0]) as z:
    z.extractall(work + "/torch", [n for n in z.namelist() if n.startswith("torch/")])
PYEOF
  rm -rf "$WORK.tmp/wheel" "$WORK"; mv "$WORK.tmp" "$WORK"
fi

TREE="$DEPS/gpu-build/tree"
git -C "$ROOT" worktree remove --force "$TREE" 2>/dev/null || rm -rf "$TREE"
git -C "$ROOT" worktree prune
git -C "$ROOT" worktree add --quiet --detach "$TREE" HEAD
COMMIT="$(git -C "$TREE" rev-parse HEAD)"
sed -i -E "s/^(tch|torch-sys) = \"=[0-9.]+\"/\1 = \"=$TCH\"/" "$TREE/Cargo.toml"
grep -qE "^tch = \"=$TCH\"" "$TREE/Cargo.toml" || die "could not set the tch pin in $TREE/Cargo.toml"
say "building harness $COMMIT with tch $TCH against torch $BASE"
(cd "$TREE" && cargo update --quiet -p tch --precise "$TCH" && cargo update --quiet -p torch-sys --precise "$TCH")
(cd "$TREE" && LIBTORCH="$WORK/torch/torch" \
   TCH_LINK_CUDA=1 cargo build --release --locked --bin harness --target-dir "$ROOT/target/gpu-build")

OUT="$ROOT/.gpu"
rm -rf "$OUT"; mkdir -p "$OUT/tok"
cp "$ROOT/target/gpu-build/release/harness" "$OUT/harness"
strip "$OUT/harness" 2>/dev/null || true
cp "$ROOT/scripts/gpu/make_models.py" "$OUT/"
for f in tokenizer.json tokenizer_config.json chat_template.jinja config.json; do
  cp "$DEPS/models/smollm2-135m-instruct/$f" "$OUT/tok/"
done
printf 'commit %s (tch pins changed to %s)\ndevice torch %s\nlinked against PyPI torch==%s\n' "$COMMIT" "$TCH" "$DEVICE_TORCH" "$BASE" >"$OUT/BUILD.txt"
git -C "$ROOT" worktree remove --force "$TREE"
say "ready: $(du -sh "$OUT" | cut -f1) in .gpu/ ($(cat "$OUT/BUILD.txt" | head -1))"
