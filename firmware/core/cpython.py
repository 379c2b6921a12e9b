# CPython stand-ins for what MicroPython has built in (const, wrapping millisecond ticks, asyncio
# sleep_ms/wait_for_ms). Imported by core.compat on CPython only: never loaded on the device.
# Type checking: pyright checks the firmware against MicroPython's stubs, so to pyright these names
# are the MicroPython functions they stand in for (one type per name in core.compat: its Clock's
# ticks are the stubs' _TicksMs, not "_TicksMs | int"); the definitions below are what CPython runs.
import asyncio
import time as _time
from typing import TYPE_CHECKING

_TICKS_PERIOD = 1 << 30
_TICKS_HALF = _TICKS_PERIOD // 2

if TYPE_CHECKING:
    from asyncio import sleep_ms, wait_for_ms  # noqa: F401
    from time import ticks_add, ticks_diff, ticks_ms  # noqa: F401

    from micropython import const  # noqa: F401
else:
    def const(x):
        return x

    def ticks_ms():
        return int(_time.monotonic() * 1000) & (_TICKS_PERIOD - 1)

    def ticks_add(t, delta):
        return (t + delta) & (_TICKS_PERIOD - 1)

    def ticks_diff(a, b):
        return ((a - b + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF

    def sleep_ms(ms):
        return asyncio.sleep(ms / 1000)

    def wait_for_ms(aw, ms):
        return asyncio.wait_for(aw, ms / 1000)
