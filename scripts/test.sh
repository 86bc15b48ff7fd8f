#!/usr/bin/env bash
# README command 2: set up (idempotent) and run every test of the workspace.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=/dev/null
. "${HARNESS_DEPS_DIR:-$ROOT/.deps}/env.sh"
cd "$ROOT"
cargo test --workspace --all-targets --locked "$@"
# The regression checks against results/reference (non-zero exit on a regression).
cargo run --locked --quiet --bin harness -- regress
