#!/usr/bin/env bash
# The test command of the README: sets up what the tests need on a fresh
# machine (only the Rust toolchain is assumed), then runs every test in the
# workspace: unit and property tests, scenario and determinism tests, the
# bounded bolero harnesses, and the real-process loopback tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The end-to-end tests drive real nodes with real clients (curl).
if ! command -v curl >/dev/null 2>&1; then
  echo "installing curl (needed by the loopback tests)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq curl >/dev/null
fi

cargo test --workspace --locked "$@"
