#!/usr/bin/env bash
# Installs the real servers the tests start (Debian packages), when missing:
# nats-server (JetStream), redis-server + redis-cli, prometheus + promtool,
# prometheus-alertmanager.
# Idempotent.
# As root it runs apt-get; otherwise through sudo, or it prints the exact
# command and fails.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have nats-server || missing+=(nats-server)
have redis-server || missing+=(redis-server)
have redis-cli || missing+=(redis-tools)
{ have prometheus && have promtool; } || missing+=(prometheus)
have prometheus-alertmanager || have alertmanager || missing+=(prometheus-alertmanager)
have openssl || missing+=(openssl)

# The Python consumer example's modules (its test skips, saying why, without
# them); never fatal: pip may have no index to reach.
if command -v python3 >/dev/null \
  && ! python3 -c 'import nats, google.protobuf, grpc_tools' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/../examples/python/requirements.txt" \
    || echo "could not install examples/python/requirements.txt; the Python consumer test will skip" >&2
fi

[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing[*]}"
echo "tests need: ${missing[*]}; installing with: $cmd" >&2
if [ "$(id -u)" = 0 ]; then
  bash -c "$cmd"
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo bash -c "$cmd"
else
  echo "cannot install as $(id -un) without sudo; run as root: $cmd" >&2
  exit 1
fi
