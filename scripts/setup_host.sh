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
# The MicroPython of tests, make sim, run_host and make bench is a 32-bit unix build (the ESP32's word
# size: objects and bytecode take the room they take on the device), built from ../shared/micropython
# when it is there. The PyPI wheel (64-bit, objects ~1.5x larger) stays as micropython64 and is the
# fallback where the 32-bit build cannot be made (no ../shared, no gcc-multilib).
SHARED_MP="$(cd "$(dirname "$0")/.." && pwd)/../shared/micropython"
if [ ! -e "$VENV/bin/micropython64" ]; then
  mv "$VENV/bin/micropython" "$VENV/bin/micropython64"
fi
rm -f "$VENV/bin/micropython"
if [ -x "$VENV/mp32/micropython" ] || { [ -f "$SHARED_MP/build-unix32.sh" ] && bash "$SHARED_MP/build-unix32.sh" "$VENV/mp32"; }; then
  ln -s ../mp32/micropython "$VENV/bin/micropython"  # relative: the venv still works when its folder moves
else
  echo "setup: the 32-bit MicroPython could not be built (needs ../shared/micropython and gcc-multilib): using the 64-bit wheel, whose heap figures overstate the ESP32's ~1.5x" >&2
  ln -s micropython64 "$VENV/bin/micropython"
fi
"$VENV/bin/micropython" -c "import sys, asyncio; print('setup: host MicroPython ok: %s, %d-bit' % (sys.implementation._build if hasattr(sys.implementation, '_build') else sys.version, 32 if sys.maxsize < 2**32 else 64))"
# micropython-lib's umqtt.simple from PyPI, for the local mip index the deploy tests install from
MIP_CACHE="$VENV/mip-cache" "$VENV/bin/python" scripts/mip_index.py fetch
