# Waiting for a first fix (hwcheck, tools), a Fix's repr, its set-up and clear(), its date moved on at
# midnight (gnss.fix Fix.put, once a day at most), a FieldReader's set-up (gnss.fields) and a source's
# failure counted and logged (GnssSource._error): not on the telelogger's every-report path (imported
# for the call, dropped again on the device).
from core.compat import DEFAULT_CLOCK
from gnss.fix import Fix, JumpFilter, valid_date


def new(o, a, n=40):
    """Fix(jump_filter=a) or gnss.fields.FieldReader(buf=a, n): their __init__ (run once, so not resident)."""
    if isinstance(o, Fix):
        o.jump_filter = a
        o.accepted = o.rejected = o.ignored = o.jumps = o.updates = o.expired = 0
        clear(o)
        return
    o.buf = a
    # field offsets: a bytearray when they fit in a byte (the modem's and co-processor's 128-byte
    # lines: 2 x n bytes instead of 2 x 4n), else lists
    o.start = bytearray(n) if len(a) < 256 else [0] * n
    o.end = bytearray(n) if len(a) < 256 else [0] * n
    o.count = 0
    o.errors = 0
    o.hour = o.minute = o.second = o.ms = o.year = o.month = o.day = 0
    o.data = o.exp = 0  # fraction of the last _dec() and its digits


def source(o, fix, jump_filter, clock, log):
    """GnssSource.__init__ (its arguments: gnss/fix.py)."""
    if jump_filter is True:
        if fix is None:
            fix = Fix(JumpFilter())
    elif fix is None:
        fix = Fix(jump_filter)
    else:
        fix.jump_filter = jump_filter
    o._fix = fix
    o.clock = clock or DEFAULT_CLOCK
    o.log = log
    o.errors = 0
    o.last_error = None
    o._task = None


def start(o, stop=0):
    """GnssSource.start() (run() as a task, idempotent: the task), and with stop, GnssSource.stop()."""
    if stop:
        if o._task is not None:
            o._task.cancel()
            o._task = None
        return None
    if o._task is None:
        import asyncio

        o._task = asyncio.create_task(o.run())
    return o._task


def error(o, what, e):
    """GnssSource._error(what, e): a failure counted (errors), kept (last_error) and logged."""
    o.errors += 1
    o.last_error = "%s: %s" % (what, e)
    if o.log is not None:
        o.log.warn("gnss: %s: %s", what, e)


def clear(f):
    """Fix.clear()."""
    f.year = f.month = f.day = f.hour = f.minute = f.second = f.ms = None
    f.epoch = f.lat = f.lon = f.alt = f.speed_kmh = f.course = None
    f.sats = f.hdop = f.quality = f.ticks = None
    f.valid = False
    jf = f.jump_filter
    if jf:
        jf.run = 0
        jf.lat = jf.lon = None


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
