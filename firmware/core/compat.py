# Runtime shims so the same firmware runs on MicroPython (ESP32, unix) and CPython.
# Nothing here imports `machine`: clocks and pins are passed in by the board layer.
# Type checking (pyright + the ESP32 stubs): to pyright, core/cpython.py's fallbacks are the
# MicroPython functions themselves (its TYPE_CHECKING branch), so each name here has one type.
import asyncio

try:  # MicroPython: the real ones (the CPython fallbacks live in core/cpython.py: no bytecode for them on the device)
    from micropython import const
    from time import ticks_add, ticks_diff, ticks_ms

    sleep_ms = asyncio.sleep_ms
    wait_for_ms = asyncio.wait_for_ms
except (ImportError, AttributeError):  # CPython
    from core.cpython import const, sleep_ms, ticks_add, ticks_diff, ticks_ms, wait_for_ms  # noqa: F401


TimeoutError = asyncio.TimeoutError  # noqa: A001 - the asyncio one on both runtimes


class Clock:
    """Monotonic millisecond clock plus async sleep, injectable for tests.

    Drivers take a Clock argument instead of calling `time` directly so a test can
    substitute a recording or scaled clock. `ticks_ms()`, `diff(a, b)`, `sleep_ms(ms)` and
    `wait_for_ms(aw, ms)` are the runtime's own functions (static: no bytecode of their own).
    """

    ticks_ms = staticmethod(ticks_ms)
    diff = staticmethod(ticks_diff)
    sleep_ms = staticmethod(sleep_ms)
    wait_for_ms = staticmethod(wait_for_ms)

    def since(self, t0):
        return ticks_diff(ticks_ms(), t0)


DEFAULT_CLOCK = Clock()


# ---- a helper shared by the byte parsers (NMEA checksums, ELM327 hex replies); kept here so it
# costs no module of its own on the device
def hexval(c):
    """ASCII byte -> 0..15, or -1 if not a hex digit."""
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1
