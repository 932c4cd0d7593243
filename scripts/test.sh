#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration against real Redis and
# Valkey servers, doc tests) and ends with one total line: "tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($i ~ /^passed/) p += $(i - 1)
         if ($i ~ /^failed/) f += $(i - 1)
       }
     }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
