#!/usr/bin/env bash
# README command 1: set up (idempotent), build in release mode, and run the main job,
# `harness reproduce --table 1` by default; any arguments replace `reproduce --table 1`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=/dev/null
. "${HARNESS_DEPS_DIR:-$ROOT/.deps}/env.sh"
cd "$ROOT"
cargo build --release --locked --bin harness
if [ "$#" -eq 0 ]; then set -- reproduce --table 1; fi
exec "$ROOT/target/release/harness" "$@"
