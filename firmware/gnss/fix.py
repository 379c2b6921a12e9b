# The one GNSS state object every source updates in place (Fix), its plausibility checks (null
# island, jump filter, staleness), the calendar helpers it needs, and what every source is
# (GnssSource, GnssError). No parsing here: gnss/fields.py reads fields, gnss/nmea.py sentences;
# the receivers are gnss/nmea.py (UartGnss), gnss/modem.py and gnss/coproc.py (gnss/sources.py
# finds them).
#
# GnssSource, the contract of every source (UartGnss, ModemGnss, CoprocGnss), one shared Fix:
#   src.fix()        -> the Fix, updated in place; its position is current (valid) only while
#                       reports keep coming: no fresh one for stale_ms (10 s, or three
#                       report periods when longer) and fix() marks it invalid. (0,0) positions
#                       and jumps (JumpFilter, on by default) are never taken.
#   await src.run()  the source's whole life as one task: switch the receiver on, read or poll
#                       it, switch it on again after it lost its state (module restart), until
#                       cancelled. Failures are counted (errors, last_error), logged, and retried.
#                       (asyncio.CancelledError is a BaseException on both runtimes: the
#                       `except Exception` of a run() loop lets a cancel through.)
#   src.start()      run() as a task (idempotent); src.stop() cancels it.
#   src.restart()    the receiver lost its state (power cycle, re-init): run() switches it on again.
#   await src.off()  switch the receiver off (standby); a later run()/restart() switches it on.
from core.compat import const, ticks_diff, ticks_ms
from core.errors import lookup

KNOT_KMH = 1.852
_STALE_MS = const(10000)  # a position with no fresh report for this long is not current (GnssSource.stale_ms)


# The modem GNSS failed to start or stop (gnss/cgps.py); the message names the command and the reason.
# RuntimeError itself, not a class of its own (a class costs ~140 bytes of resident heap): no except site
# tells it apart (a source's run() and standby catch any Exception).
GnssError = RuntimeError


def valid_date(year, month, day):
    """A real Gregorian date (29 February only in leap years)."""
    if not (1 <= month <= 12 and 1 <= day <= (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]):
        return False
    return month != 2 or day < 29 or (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))


def days_from_epoch(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (years counted from March, so the
    leap day is the last day of the year: 719469 is 1970-01-01 counted from 0000-03-01)."""
    if month <= 2:
        year -= 1
        month += 12
    return 365 * year + year // 4 - year // 100 + year // 400 + (153 * (month - 3) + 2) // 5 + day - 719469


class JumpFilter:
    """Rejects a position that jumps implausibly far from the last accepted one (lat, lon; see
    Fix.put). The official firmware drops any fix more than 0.1 degree (lat or lon) away from the
    previous one. That can lock out forever after one bad first fix, so here `max_rejects`
    consecutive rejections (counted in `run`) re-anchor on the new position. `max_deg=None`
    disables it."""

    def __init__(self, max_deg=0.1, max_rejects=5):
        self.max_deg = max_deg
        self.max_rejects = max_rejects
        self.run = 0
        self.lat = self.lon = None


class Fix:
    """The one GNSS state object every source updates in place.

    Attributes (None = unknown): year, month, day, hour, minute, second, ms (UTC);
    epoch (int Unix seconds UTC, only when the date is known); lat, lon (float degrees, south and
    west negative); alt (m above MSL); speed_kmh; course (deg true); sats; hdop; quality (GGA fix
    quality 0..8); valid (bool: a current position); ticks (ticks_ms of the last position
    update, or None). Counters: accepted, rejected (malformed, and (0,0) positions), ignored
    (well-formed but unused sentences), jumps (positions dropped by the jump filter), updates
    (accepted position updates), expired (valid positions made invalid by GnssSource.fix())."""

    # Set by the sources (gnss/nmea.py, gnss/modem.py, gnss/coproc.py) besides put(), None from
    # clear(): declared for the type checker only (a bare annotation compiles to nothing on MicroPython)
    alt: "float | None"
    speed_kmh: "float | None"
    course: "float | None"
    sats: "int | None"
    hdop: "float | None"
    quality: "int | None"

    # set by clear() and the constructor (gnss/wait.py): declared for the type checker only (as above;
    # `if 1 - 1` compiles to nothing too: see telelogger/loop.py)
    if 1 - 1:
        from typing import Any
    year: "int | None"
    month: "int | None"
    day: "int | None"
    hour: "int | None"
    minute: "Any"
    second: "Any"
    ms: "int | None"
    epoch: "int | None"
    lat: "float | None"
    lon: "float | None"
    ticks: "Any"
    valid: bool
    jump_filter: "Any"
    accepted: int
    rejected: int
    ignored: int
    jumps: int
    updates: int
    expired: int

    def __init__(self, jump_filter=None):  # (run once: its body and clear()'s are gnss/wait.py's)
        lookup("gnss.wait", "new", self, jump_filter)

    def clear(self):
        """Every field unknown, valid False, the jump filter's anchor dropped (counters kept)."""
        lookup("gnss.wait", "clear", self)

    def put(self, f, lat, lon, valid, time, date):
        """A source's report: position lat, lon (None = unknown), valid (a fix), and when `time`,
        the time in f.hour, .minute, .second, .ms, when `date`, the date in f.year, .month, .day (f: a
        gnss.fields.FieldReader). False (nothing taken) for a valid (0,0) position (a receiver's
        "no fix" placeholder, counted as rejected) or a jump (counted in jumps). A time-only
        report (GGA) that went back more than 12 h crossed midnight before the next dated one
        (RMC): the date moves on by a day. Sets epoch, ticks, and counts the update."""
        jf = self.jump_filter
        if valid and lat is not None and lon is not None:
            if lat == 0 and lon == 0:
                self.rejected += 1
                return False
            if jf is not None:
                m = jf.max_deg
                if m is None or jf.lat is None or (abs(lat - jf.lat) <= m and abs(lon - jf.lon) <= m):
                    jf.run = 0
                else:
                    jf.run += 1
                    if not jf.max_rejects or jf.run <= jf.max_rejects:
                        self.jumps += 1
                        return False
                    jf.run = 0  # re-anchor
                jf.lat = lat
                jf.lon = lon
        if date:
            self.year = f.year
            self.month = f.month
            self.day = f.day
        y = self.year
        if time:
            h = f.hour
            # a known hour comes with its minute and second, a known year with its month and day (put()
            # sets them together): no None below (guards would cost bytecode in every report)
            if not date and y is not None and self.hour is not None and (
                    h * 3600 + f.minute * 60 + f.second + 43200 < self.hour * 3600 + self.minute * 60 + self.second):
                y = lookup("gnss.wait", "next_day", self)  # once a day at most: gnss/wait.py, imported for it
            self.hour = h
            self.minute = f.minute
            self.second = f.second
            self.ms = f.ms
        h = self.hour
        self.epoch = None if y is None or h is None else (
            days_from_epoch(y, self.month, self.day) * 86400 + (h * 3600 + self.minute * 60 + self.second))  # (see above)
        # (the seconds of the day summed first: a small int; the sum with the day's seconds is past 2^30, a long int on
        # the 32-bit device, made once per report, not once per term)
        self.lat = lat
        self.lon = lon
        self.valid = valid
        self.ticks = ticks_ms()
        self.updates += 1
        return True

    # --- accessors -----------------------------------------------------------------------------
    def has_position(self):
        return self.valid and self.lat is not None and self.lon is not None

    def __repr__(self):  # (for people and tools: its text is gnss/wait.py's, imported for the call)
        return lookup("gnss.wait", "describe", self)


class GnssSource:
    """The base of every source. fix: a Fix to share (its jump filter replaced when jump_filter
    is given explicitly), else a new one; jump_filter True (the default) = JumpFilter(), None =
    none. log: anything with warn(fmt, *args) (core log contract); None: counters only."""

    stale_ms = _STALE_MS

    if 1 - 1:  # set by the constructor (gnss/wait.py): declared for the type checker only (as Fix's)
        from typing import Any
    _fix: Fix
    clock: "Any"
    log: "Any"
    errors: int
    last_error: "str | None"
    _task: "Any"

    def __init__(self, fix=None, jump_filter=True, clock=None, log=None):  # (run once: gnss/wait.py's)
        lookup("gnss.wait", "source", self, fix, jump_filter, clock, log)

    def fix(self):
        """The shared Fix, its position marked not current (valid False, counted in expired) when its
        last update is older than stale_ms (the receiver went silent or kept repeating an old fix)."""
        f = self._fix
        if f.valid and f.ticks is not None and ticks_diff(ticks_ms(), f.ticks) > self.stale_ms:
            f.valid = False
            f.expired += 1
        return f

    def start(self):
        """Start run() as a task (inside a running event loop); returns it."""
        return lookup("gnss.wait", "start", self)  # (not the telelogger's: its loop runs run() itself)

    def stop(self):
        lookup("gnss.wait", "start", self, 1)

    def restart(self):
        pass

    async def off(self):
        pass

    def _error(self, what, e):
        """A failure of `what`: counted (errors), kept (last_error), logged (rare: gnss/wait.py's)."""
        lookup("gnss.wait", "error", self, what, e)
