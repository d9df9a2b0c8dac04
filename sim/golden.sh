#!/usr/bin/env bash
# Checks that a release build reproduces the golden trace hash that the
# debug-build test (sim/tests/golden.rs) asserts: debug and release agree.
# Usage: sim/golden.sh   (from anywhere in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
expected=$(tr -d '[:space:]' < sim/tests/golden/tiny.hash)
cargo build --release -q -p allium-sim
actual=$(./target/release/allium-sim run sim/tests/golden/tiny.toml --seed 42 --json 2>/dev/null \
  | sed -n 's/.*"trace_hash": *"\([0-9a-f]*\)".*/\1/p')
if [ "$actual" != "$expected" ]; then
  echo "golden trace hash mismatch in release: expected $expected, got $actual" >&2
  exit 1
fi
echo "golden trace hash OK in release: $actual"
