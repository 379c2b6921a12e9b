# Waiting for a first fix (hwcheck, tools), and a Fix's repr: not on the telelogger's path.
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


def describe(f):
    """repr(Fix): its position, motion, quality and time."""
    return "<Fix valid=%s lat=%s lon=%s alt=%s kmh=%s course=%s sats=%s hdop=%s epoch=%s>" % (
        f.valid, f.lat, f.lon, f.alt, f.speed_kmh, f.course, f.sats, f.hdop, f.epoch)
