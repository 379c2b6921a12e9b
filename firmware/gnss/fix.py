# The one GNSS state object every source updates in place, its plausibility checks (null island,
# jump filter, staleness) and the calendar helpers it needs. No parsing here: gnss/fields.py
# reads fields, gnss/nmea.py sentences, gnss/sources.py (and its per-source modules) receivers.
from core.compat import ticks_diff, ticks_ms

KNOT_KMH = 1.852
STALE_MS = 10000  # a position with no fresh report for this long is not current (Fix.expire)

_CUM_DAYS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def valid_date(y, mo, d):
    """A real Gregorian date (29 February only in leap years)."""
    if not (1 <= mo <= 12 and 1 <= d <= MONTH_DAYS[mo - 1]):
        return False
    return mo != 2 or d < 29 or (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0))


def days_from_epoch(y, m, d):
    """Days since 1970-01-01 for a proleptic Gregorian date (y >= 1970)."""
    y1 = y - 1
    leaps = (y1 // 4 - 1969 // 4) - (y1 // 100 - 1969 // 100) + (y1 // 400 - 1969 // 400)
    days = (y - 1970) * 365 + leaps + _CUM_DAYS[m - 1] + d - 1
    if m > 2 and valid_date(y, 2, 29):
        days += 1
    return days


class JumpFilter:
    """Rejects a position that jumps implausibly far from the last accepted one.

    The official firmware drops any fix more than 0.1 degree (lat or lon) away from the previous
    one. That can lock out forever after one bad first fix, so here `max_rejects` consecutive
    rejections re-anchor on the new position. `max_deg=None` disables the filter."""

    def __init__(self, max_deg=0.1, max_rejects=5):
        self.max_deg = max_deg
        self.max_rejects = max_rejects
        self._run = 0

    def accept(self, prev_lat, prev_lon, lat, lon):
        if self.max_deg is None or prev_lat is None or prev_lon is None:
            self._run = 0
            return True
        if abs(lat - prev_lat) <= self.max_deg and abs(lon - prev_lon) <= self.max_deg:
            self._run = 0
            return True
        self._run += 1
        if self.max_rejects and self._run > self.max_rejects:
            self._run = 0
            return True
        return False

    def reset(self):
        self._run = 0


class Fix:
    """The one GNSS state object every source updates in place.

    Attributes (None = unknown): year, month, day, hour, minute, second, ms (UTC);
    epoch (int Unix seconds UTC, only when the date is known); lat, lon (float degrees, south and
    west negative); alt (m above MSL); speed_kmh; course (deg true); sats; hdop; quality (GGA fix
    quality 0..8); valid (bool: a current position); ticks (ticks_ms of the last position
    update, or None). Counters: accepted, rejected (malformed, and (0,0) positions), ignored
    (well-formed but unused sentences), jumps (positions dropped by the jump filter), updates
    (accepted position updates), expired (valid positions made invalid by expire())."""

    def __init__(self, jump_filter=None):
        self.jump_filter = jump_filter
        self.accepted = 0
        self.rejected = 0
        self.ignored = 0
        self.jumps = 0
        self.updates = 0
        self.expired = 0
        self.clear()

    def clear(self):
        self.year = self.month = self.day = None
        self.hour = self.minute = self.second = self.ms = None
        self.epoch = None
        self.lat = self.lon = None
        self.alt = None
        self.speed_kmh = None
        self.course = None
        self.sats = None
        self.hdop = None
        self.quality = None
        self.valid = False
        self.ticks = None
        self._last_lat = self._last_lon = None
        if self.jump_filter:
            self.jump_filter.reset()

    # --- for sources ---------------------------------------------------------------------------
    def admit(self, lat, lon):
        """True if a valid (non-None) position may be taken: not (0,0) (a receiver's "no fix"
        placeholder, counted as rejected) and not a jump (counted in jumps)."""
        if lat is None or lon is None:
            return True
        if lat == 0 and lon == 0:
            self.rejected += 1
            return False
        jf = self.jump_filter
        if jf is None or jf.accept(self._last_lat, self._last_lon, lat, lon):
            return True
        self.jumps += 1
        return False

    def set_position(self, lat, lon, valid):
        self.lat = lat
        self.lon = lon
        self.valid = valid
        if lat is not None and lon is not None and valid:
            self._last_lat = lat
            self._last_lon = lon
        self.ticks = ticks_ms()
        self.updates += 1

    def expire(self, stale_ms=STALE_MS, now=None):
        """Mark the position not current when its last update is older than stale_ms (the
        receiver went silent or kept repeating an old fix). Returns self."""
        if self.valid and self.ticks is not None:
            if ticks_diff(ticks_ms() if now is None else now, self.ticks) > stale_ms:
                self.valid = False
                self.expired += 1
        return self

    def set_time(self, h, mi, s, ms):
        self.hour = h
        self.minute = mi
        self.second = s
        self.ms = ms
        self._update_epoch()

    def set_date(self, y, mo, d):
        self.year = y
        self.month = mo
        self.day = d
        self._update_epoch()

    def _update_epoch(self):
        y = self.year
        mo = self.month
        d = self.day
        h = self.hour
        mi = self.minute
        s = self.second
        if y is None or mo is None or d is None or h is None or mi is None or s is None:
            self.epoch = None
            return
        self.epoch = days_from_epoch(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s)

    # --- accessors -----------------------------------------------------------------------------
    def has_position(self):
        return self.valid and self.lat is not None and self.lon is not None

    def datetime(self):
        """(year, month, day, hour, minute, second) or None when date or time is unknown."""
        if self.year is None or self.hour is None:
            return None
        return (self.year, self.month, self.day, self.hour, self.minute, self.second)

    def __repr__(self):
        return "<Fix valid=%s lat=%s lon=%s alt=%s kmh=%s course=%s sats=%s hdop=%s epoch=%s>" % (
            self.valid, self.lat, self.lon, self.alt, self.speed_kmh, self.course, self.sats, self.hdop, self.epoch)
