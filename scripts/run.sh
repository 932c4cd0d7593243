#!/usr/bin/env bash
# Starts redis-server on 127.0.0.1 with the release module loaded, in the
# foreground. PORT=... picks the port (default 6379, or a free one if taken).
#
# Without DATA: a quick demo server, nothing kept on disk.
# With DATA=<dir>: a durable server with the production settings of
# scripts/redis.conf (AOF with appendfsync always, maxmemory-policy
# noeviction), its data in <dir> (created if missing; the server's config is
# written to <dir>/redis.conf at each start). Restarting with the same DATA
# keeps every acknowledged write.
#
# DATABROKER_MODULE=<file.so> loads another build; REDIS_SERVER=<binary>
# runs another server (e.g. valkey-server).
set -euo pipefail
cd "$(dirname "$0")/.."
module="${DATABROKER_MODULE:-$PWD/target/release/libdatabroker.so}"
server="${REDIS_SERVER:-redis-server}"
data="${DATA:-}"
port="${PORT:-}"
if [ -z "$port" ]; then
  port=6379
  if redis-cli -p "$port" ping >/dev/null 2>&1 || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "port 6379 is taken; using $port"
  fi
fi
if [ -n "$data" ]; then
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  conf="$data/redis.conf"
  # scripts/redis.conf with this build's module path.
  while IFS= read -r line; do
    case "$line" in
      "loadmodule "*)
        args=${line#loadmodule }
        args=${args#* }
        printf 'loadmodule "%s" %s\n' "$module" "$args"
        ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <scripts/redis.conf >"$conf"
  mode="a durable server (AOF, appendfsync always) with its data in $data ($conf)"
else
  mode="a demo server (nothing kept on disk; DATA=<dir> for a durable one)"
fi
cat <<MSG
redis-databroker: starting $mode
on 127.0.0.1:$port with $module
Try, in another terminal:
  redis-cli -p $port DB.PUT '{pomerium_v3}' example.com/session s1 hello
  redis-cli -p $port DB.GET '{pomerium_v3}' example.com/session s1
  redis-cli -p $port DB.VERSIONS '{pomerium_v3}'
  redis-cli -p $port COMMAND DOCS DB.SYNC
  redis-cli -p $port INFO databroker
Follow the change feed from version 1 (blocks until the next DB.PUT):
  SV=\$(redis-cli -p $port DB.VERSIONS '{pomerium_v3}' | head -1)
  redis-cli -p $port DB.SYNC '{pomerium_v3}' "\$SV" 1 BLOCK 0
Stop with Ctrl-C.
MSG
if [ -n "$data" ]; then
  exec "$server" "$conf" --port "$port" --bind 127.0.0.1 --dir "$data"
fi
exec "$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --loadmodule "$module"
