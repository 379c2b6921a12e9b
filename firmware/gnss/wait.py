# Waiting for a first fix (hwcheck, tools), a Fix's repr, and its date moved on at midnight (gnss.fix
# Fix.put, once a day at most): not on the telelogger's every-report path.
from core.compat import DEFAULT_CLOCK
from gnss.fix import valid_date


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


def next_day(f):
    """Move the Fix's date (year, month, day: known) on by one day; returns the new year."""
    y = f.year
    d = f.day + 1
    mo = f.month
    if not valid_date(y, mo, d):
        d = 1
        mo += 1
        if mo > 12:
            mo = 1
            y += 1
    f.year = y
    f.month = mo
    f.day = d
    return y
