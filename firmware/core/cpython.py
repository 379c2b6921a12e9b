# CPython stand-ins for what MicroPython has built in (const, wrapping millisecond ticks, asyncio
# sleep_ms/wait_for_ms). Imported by core.compat on CPython only: never loaded on the device.
import asyncio
import time as _time

_TICKS_PERIOD = 1 << 30
_TICKS_HALF = _TICKS_PERIOD // 2


def const(x):
    return x


def ticks_ms():
    return int(_time.monotonic() * 1000) & (_TICKS_PERIOD - 1)  # pyright: ignore[reportAttributeAccessIssue] - CPython


def ticks_add(t, delta):
    return (t + delta) & (_TICKS_PERIOD - 1)


def ticks_diff(a, b):
    return ((a - b + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF


def sleep_ms(ms):
    return asyncio.sleep(ms / 1000)


def wait_for_ms(aw, ms):
    return asyncio.wait_for(aw, ms / 1000)
