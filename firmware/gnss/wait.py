# Waiting for a first fix (hwcheck, tools): not on the telelogger's path.
from core.compat import DEFAULT_CLOCK


async def wait_fix(src, timeout_ms, poll_ms=100, clock=None):
    """Wait until `src.fix()` has a valid position; returns the Fix, or None on timeout."""
    clock = clock or DEFAULT_CLOCK
    t0 = clock.ticks_ms()
    while True:
        f = src.fix()
        if f.has_position():
            return f
        if clock.diff(clock.ticks_ms(), t0) >= timeout_ms:
            return None
        await clock.sleep_ms(poll_ms)
