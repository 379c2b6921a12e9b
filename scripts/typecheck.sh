#!/usr/bin/env bash
# Type-check firmware/ with pyright against the MicroPython ESP32 API (micropython-esp32-stubs).
# The stubs put machine.pyi, time.pyi, ... at the top of site-packages and shadow CPython's
# modules, so they live in their own venv (TYPECHECK_VENV, default .venv-typecheck), never in .venv.
# pyrightconfig.json points typeshedPath at that site-packages (its stdlib/ holds the MicroPython
# standard library stubs), so `time.ticks_ms`, `asyncio.sleep_ms`, `machine.UART` are checked.
#
#   bash scripts/typecheck.sh            # all of firmware/ (pyrightconfig.json "include")
#   bash scripts/typecheck.sh firmware/board firmware/modem/power.py
set -euo pipefail
cd "$(dirname "$0")/.."
TV=.venv-typecheck  # must match "venv" in pyrightconfig.json
if [ ! -x "$TV/bin/pyright" ] || [ ! -d "$TV/typeshed/stdlib" ]; then
  echo "typecheck: installing pyright and micropython-esp32-stubs into $TV" >&2
  python3 -m venv "$TV"
  "$TV/bin/pip" install -q --disable-pip-version-check "pyright==1.1.*" "micropython-esp32-stubs==1.29.*"
  SP=$("$TV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  ln -sfn "$SP" "$TV/typeshed"
fi
exec "$TV/bin/pyright" "$@"
