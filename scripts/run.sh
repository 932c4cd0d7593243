#!/usr/bin/env bash
# Starts redis-server on 127.0.0.1 with the release module loaded, in the
# foreground. PORT=... picks the port (default 6379, or a free one if taken).
set -euo pipefail
cd "$(dirname "$0")/.."
module="$PWD/target/release/libdatabroker.so"
port="${PORT:-}"
if [ -z "$port" ]; then
  port=6379
  if redis-cli -p "$port" ping >/dev/null 2>&1 || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "port 6379 is taken; using $port"
  fi
fi
cat <<MSG
redis-databroker: starting redis-server on 127.0.0.1:$port with $module
Try, in another terminal:
  redis-cli -p $port DB.PUT '{pomerium_v3}' example.com/session s1 hello
  redis-cli -p $port DB.GET '{pomerium_v3}' example.com/session s1
  redis-cli -p $port DB.VERSIONS '{pomerium_v3}'
Follow the change feed from version 1 (blocks until the next DB.PUT):
  SV=\$(redis-cli -p $port DB.VERSIONS '{pomerium_v3}' | head -1)
  redis-cli -p $port DB.SYNC '{pomerium_v3}' "\$SV" 1 BLOCK 0
Stop with Ctrl-C.
MSG
exec redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --loadmodule "$module"
