# NMEA 0183 parser for GNSS receivers (u-blox, SIM7600, MediaTek, SiRF...), allocation-light.
#
#   fix = Fix()                      # one preallocated fix, updated in place
#   p = NMEAParser(fix)
#   p.feed(chunk)                    # bytes split anywhere; returns sentences accepted in this chunk
#   fix.lat, fix.lon, fix.valid ...
#
# Bytes are copied into one preallocated line buffer. A line starts at '$' (or '!') and ends at
# CR/LF; it must carry a valid `*hh` checksum. Any talker ID is accepted (GP, GN, GL, GA, GB,
# BD...). RMC, GGA and VTG update the Fix; other well-formed sentences (GSA, GSV, GLL, ZDA,
# proprietary $P...) are counted as ignored. Bad checksums, missing checksums, non-ASCII bytes,
# overlong or truncated lines and malformed fields are counted as rejected; the parser resyncs on
# the next '$'. Nothing raises out of feed(). Empty fields mean "unknown" and become None.
#
# Field parsing lives in FieldReader so the SIM7600 (+CGPSINFO) source reuses it.
#
# Precision: lat/lon are Python floats. On the ESP32 port MicroPython floats are single precision
# (~7 significant digits, about 1 m at these magnitudes); the host runtimes use doubles.
from core.compat import hexval, ticks_ms

KNOT_KMH = 1.852

_CUM_DAYS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_POW10 = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000)


def is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def days_from_epoch(y, m, d):
    """Days since 1970-01-01 for a proleptic Gregorian date (y >= 1970)."""
    y1 = y - 1
    leaps = (y1 // 4 - 1969 // 4) - (y1 // 100 - 1969 // 100) + (y1 // 400 - 1969 // 400)
    days = (y - 1970) * 365 + leaps + _CUM_DAYS[m - 1] + d - 1
    if m > 2 and is_leap(y):
        days += 1
    return days


def two_digit_year(yy):
    """POSIX %y convention: 69..99 -> 1969..1999, 00..68 -> 2000..2068."""
    return 1900 + yy if yy >= 69 else 2000 + yy


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
    quality 0..8); valid (bool); ticks (ticks_ms of the last position update, or None).
    Counters: accepted, rejected, ignored (well-formed but unused sentences), jumps (positions
    dropped by the jump filter), updates (accepted position updates)."""

    def __init__(self, jump_filter=None):
        self.jump_filter = jump_filter
        self.accepted = 0
        self.rejected = 0
        self.ignored = 0
        self.jumps = 0
        self.updates = 0
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

    # --- helpers for sources -------------------------------------------------------------
    def check_jump(self, lat, lon):
        """True if the (non-None) position passes the jump filter; counts rejected jumps."""
        jf = self.jump_filter
        if jf is None or lat is None or lon is None:
            return True
        if jf.accept(self._last_lat, self._last_lon, lat, lon):
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

    def set_time(self, h, mi, s, ms):
        ph = self.hour
        pm = self.minute
        ps = self.second
        if ph is not None and pm is not None and ps is not None and self.year is not None:
            # a time-only sentence (GGA) crossing midnight before the next dated one (RMC)
            if h * 3600 + mi * 60 + s + 43200 < ph * 3600 + pm * 60 + ps:
                self._next_day()
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

    def _next_day(self):
        d = self.day
        mo = self.month
        y = self.year
        if d is None or mo is None or y is None:
            return
        d += 1
        if d > _MONTH_DAYS[mo - 1] or (mo == 2 and d == 29 and not is_leap(y)):
            d = 1
            mo += 1
            if mo > 12:
                mo = 1
                y += 1
        self.year = y
        self.month = mo
        self.day = d

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

    # --- accessors ---------------------------------------------------------------------------
    def has_position(self):
        return self.valid and self.lat is not None and self.lon is not None

    def age_ms(self, now=None):
        """ms since the last position update, or None if there was none."""
        if self.ticks is None:
            return None
        from core.compat import ticks_diff

        return ticks_diff(ticks_ms() if now is None else now, self.ticks)

    def datetime(self):
        """(year, month, day, hour, minute, second) or None when date or time is unknown."""
        if self.year is None or self.hour is None:
            return None
        return (self.year, self.month, self.day, self.hour, self.minute, self.second)

    def __repr__(self):
        return "<Fix valid=%s lat=%s lon=%s alt=%s kmh=%s course=%s sats=%s hdop=%s epoch=%s>" % (
            self.valid,
            self.lat,
            self.lon,
            self.alt,
            self.speed_kmh,
            self.course,
            self.sats,
            self.hdop,
            self.epoch,
        )


class FieldReader:
    """Comma-separated fields over a bytearray, parsed without slicing.

    load(n_end, start) splits buf[start:n_end] at commas. Parse methods return None for an empty
    field and set `self.err` (and return None) for a malformed one."""

    def __init__(self, buf, max_fields=40):
        self.buf = buf
        self.fs = [0] * max_fields  # field start offsets
        self.fe = [0] * max_fields  # field end offsets (exclusive)
        self.nf = 0
        self.err = False
        # time/date results (set by time()/date())
        self.h = self.mi = self.s = self.ms = 0
        self.y = self.mo = self.d = 0

    def load(self, start, end):
        buf = self.buf
        fs = self.fs
        fe = self.fe
        cap = len(fs)
        nf = 0
        fs[0] = start
        i = start
        while i < end:
            if buf[i] == 44:  # ','
                fe[nf] = i
                nf += 1
                if nf >= cap:
                    self.nf = nf
                    return False
                fs[nf] = i + 1
            i += 1
        fe[nf] = end
        self.nf = nf + 1
        self.err = False
        return True

    def empty(self, i):
        return i >= self.nf or self.fs[i] == self.fe[i]

    def char(self, i):
        """The single byte of field i (int), None if empty; malformed if longer than one."""
        if i >= self.nf:
            return None
        s = self.fs[i]
        e = self.fe[i]
        if s == e:
            return None
        if e - s != 1:
            self.err = True
            return None
        return self.buf[s]

    def uint(self, i):
        """Unsigned integer field (at most 9 digits)."""
        if i >= self.nf:
            return None
        buf = self.buf
        s = self.fs[i]
        e = self.fe[i]
        if s == e:
            return None
        if e - s > 9:
            self.err = True
            return None
        v = 0
        while s < e:
            c = buf[s] - 48
            if c < 0 or c > 9:
                self.err = True
                return None
            v = v * 10 + c
            s += 1
        return v

    def sint(self, i):
        """Signed integer field (optional leading '-')."""
        if i >= self.nf:
            return None
        s = self.fs[i]
        if s < self.fe[i] and self.buf[s] == 45:
            self.fs[i] = s + 1
            v = self.uint(i)
            self.fs[i] = s
            if v is None:
                self.err = True
                return None
            return -v
        return self.uint(i)

    def _dec(self, i):
        # -> (neg, int_part, frac_int, frac_digits) or None; sets err on malformed
        buf = self.buf
        s = self.fs[i]
        e = self.fe[i]
        neg = False
        if buf[s] == 45 or buf[s] == 43:  # '-' '+'
            neg = buf[s] == 45
            s += 1
        ip = 0
        nip = 0
        fr = 0
        nfr = 0
        dot = False
        digits = 0
        while s < e:
            c = buf[s]
            if c == 46:  # '.'
                if dot:
                    self.err = True
                    return None
                dot = True
            else:
                c -= 48
                if c < 0 or c > 9:
                    self.err = True
                    return None
                digits += 1
                if dot:
                    if nfr < 9:
                        fr = fr * 10 + c
                        nfr += 1
                else:
                    nip += 1
                    if nip > 9:
                        self.err = True
                        return None
                    ip = ip * 10 + c
            s += 1
        if not digits:
            self.err = True
            return None
        return neg, ip, fr, nfr

    def num(self, i):
        """Decimal field as float (e.g. '545.4', '-21.3', '0.117')."""
        if i >= self.nf or self.fs[i] == self.fe[i]:
            return None
        r = self._dec(i)
        if r is None:
            return None
        v = r[1] + r[2] / _POW10[r[3]] if r[3] else float(r[1])
        return -v if r[0] else v

    def latlon(self, i, hemi, max_deg):
        """(d)ddmm.mmmm field i with hemisphere field `hemi` -> signed float degrees."""
        if i >= self.nf or self.fs[i] == self.fe[i]:
            return None
        r = self._dec(i)
        if r is None:
            return None
        if r[0]:
            self.err = True
            return None
        ip = r[1]
        deg = ip // 100
        mins = ip % 100 + (r[2] / _POW10[r[3]] if r[3] else 0.0)
        if mins >= 60.0 or deg > max_deg:
            self.err = True
            return None
        v = deg + mins / 60.0
        if v > max_deg:
            self.err = True
            return None
        h = self.char(hemi)
        if max_deg == 90:
            if h == 83:  # 'S'
                return -v
            if h == 78:  # 'N'
                return v
        else:
            if h == 87:  # 'W'
                return -v
            if h == 69:  # 'E'
                return v
        self.err = True
        return None

    def time(self, i):
        """hhmmss[.sss] -> True with self.h/mi/s/ms set; None if empty."""
        if i >= self.nf:
            return None
        buf = self.buf
        s = self.fs[i]
        e = self.fe[i]
        if s == e:
            return None
        if e - s < 6:
            self.err = True
            return None
        v = 0
        for k in range(s, s + 6):
            c = buf[k] - 48
            if c < 0 or c > 9:
                self.err = True
                return None
            v = v * 10 + c
        ms = 0
        k = s + 6
        if k < e:
            if buf[k] != 46:
                self.err = True
                return None
            k += 1
            scale = 100
            while k < e:
                c = buf[k] - 48
                if c < 0 or c > 9:
                    self.err = True
                    return None
                ms += c * scale
                scale //= 10
                k += 1
        h = v // 10000
        mi = (v // 100) % 100
        sec = v % 100
        if h > 23 or mi > 59 or sec > 60:
            self.err = True
            return None
        self.h = h
        self.mi = mi
        self.s = sec
        self.ms = ms
        return True

    def date(self, i):
        """ddmmyy -> True with self.y/mo/d set; None if empty."""
        if i >= self.nf or self.fs[i] == self.fe[i]:
            return None
        if self.fe[i] - self.fs[i] != 6:
            self.err = True
            return None
        v = self.uint(i)
        if v is None:
            return None
        return self.set_date_int(v)

    def set_date_int(self, v):
        d = v // 10000
        mo = (v // 100) % 100
        y = two_digit_year(v % 100)
        if mo < 1 or mo > 12 or d < 1 or d > _MONTH_DAYS[mo - 1] or (mo == 2 and d == 29 and not is_leap(y)):
            self.err = True
            return None
        self.y = y
        self.mo = mo
        self.d = d
        return True


# line states
_IDLE = 0
_LINE = 1
_SKIP = 2


class NMEAParser:
    """Feed bytes, get the shared Fix updated. `maxlen` bounds a line (NMEA says 82 chars;
    real receivers stay under ~100); longer lines are rejected and skipped."""

    def __init__(self, fix=None, maxlen=120):
        self.fix = fix if fix is not None else Fix()
        self._buf = bytearray(maxlen)
        self._n = 0
        self._state = _IDLE
        self._fr = FieldReader(self._buf)

    def reset(self):
        """Drop any partial line (e.g. after the UART was reopened)."""
        self._n = 0
        self._state = _IDLE

    def feed(self, data, n=None):
        """Consume bytes (bytes/bytearray/memoryview; only the first n if given). Returns the
        number of sentences accepted (RMC/GGA/VTG that updated the fix) from this call."""
        buf = self._buf
        cap = len(buf)
        ln = self._n
        st = self._state
        got = 0
        if n is None:
            n = len(data)
        fix = self.fix
        for k in range(n):
            c = data[k]
            if c == 36 or c == 33:  # '$' or '!': start of a sentence
                if st == _LINE:
                    fix.rejected += 1  # truncated: a new sentence began mid-line
                buf[0] = c
                ln = 1
                st = _LINE
            elif st == _LINE:
                if c == 13 or c == 10:
                    st = _IDLE
                    got += self._line(ln)
                    ln = 0
                elif ln >= cap or c < 32 or c > 126:
                    fix.rejected += 1  # overlong or non-ASCII: drop until the next '$'
                    st = _SKIP
                    ln = 0
                else:
                    buf[ln] = c
                    ln += 1
        self._n = ln
        self._state = st
        return got

    def _line(self, n):
        try:
            r = self._sentence(n)
        except Exception:  # defensive: a parser bug must never kill the reader task
            r = -1
        fix = self.fix
        if r > 0:
            fix.accepted += 1
            return 1
        if r == 0:
            fix.ignored += 1
        elif r == -1:
            fix.rejected += 1
        # r == -2: dropped by the jump filter (counted in fix.jumps)
        return 0

    def _sentence(self, n):
        # -> 1 accepted, 0 ignored (well-formed, unused), -1 rejected, -2 jump
        buf = self._buf
        star = n - 3
        if n < 9 or buf[star] != 42:  # '*'
            return -1
        x = 0
        for k in range(1, star):
            c = buf[k]
            if c == 42 or c == 36:  # '*' or '$' inside the body: reserved delimiters, a mangled line
                return -1  # (two copies of "*" cancel out in the XOR, so the checksum alone misses it)
            x ^= c
        hi = hexval(buf[n - 2])
        lo = hexval(buf[n - 1])
        if hi < 0 or lo < 0 or (hi << 4 | lo) != x:
            return -1
        fr = self._fr
        if not fr.load(1, star):
            return -1
        # address field: 2-char talker + 3-char sentence type; proprietary ($P...) ignored
        a = fr.fs[0]
        if fr.fe[0] - a != 5 or buf[0] != 36 or buf[a] == 80:  # 'P'
            return 0
        t0 = buf[a + 2]
        t1 = buf[a + 3]
        t2 = buf[a + 4]
        if t0 == 82 and t1 == 77 and t2 == 67:  # RMC
            return self._rmc(fr)
        if t0 == 71 and t1 == 71 and t2 == 65:  # GGA
            return self._gga(fr)
        if t0 == 86 and t1 == 84 and t2 == 71:  # VTG
            return self._vtg(fr)
        return 0

    def _rmc(self, fr):
        # 1 time, 2 status, 3 lat, 4 N/S, 5 lon, 6 E/W, 7 knots, 8 course, 9 date, 10-11 magvar, 12 mode
        if fr.nf < 10:
            return -1
        has_t = fr.time(1)
        status = fr.char(2)
        lat = fr.latlon(3, 4, 90)
        lon = fr.latlon(5, 6, 180)
        kn = fr.num(7)
        course = fr.num(8)
        has_d = fr.date(9)
        mode = fr.char(12) if fr.nf > 12 else None
        if fr.err or (status is not None and status != 65 and status != 86):
            return -1
        valid = status == 65 and mode != 78  # 'A' and mode not 'N'
        if (lat is None) != (lon is None):
            return -1
        fix = self.fix
        if valid and not fix.check_jump(lat, lon):
            return -2
        if has_t:
            fix.set_time(fr.h, fr.mi, fr.s, fr.ms)
        if has_d:
            fix.set_date(fr.y, fr.mo, fr.d)
        fix.speed_kmh = None if kn is None else kn * KNOT_KMH
        fix.course = course
        fix.set_position(lat, lon, valid)
        return 1

    def _gga(self, fr):
        # 1 time, 2 lat, 3 N/S, 4 lon, 5 E/W, 6 quality, 7 sats, 8 hdop, 9 alt, 10 M, 11 geoid sep
        if fr.nf < 10:
            return -1
        has_t = fr.time(1)
        lat = fr.latlon(2, 3, 90)
        lon = fr.latlon(4, 5, 180)
        q = fr.uint(6)
        sats = fr.uint(7)
        hdop = fr.num(8)
        alt = fr.num(9)
        if fr.err or (lat is None) != (lon is None):
            return -1
        valid = bool(q)
        fix = self.fix
        if valid and not fix.check_jump(lat, lon):
            return -2
        if has_t:
            fix.set_time(fr.h, fr.mi, fr.s, fr.ms)
        fix.quality = q
        fix.sats = sats
        fix.hdop = hdop
        fix.alt = alt
        fix.set_position(lat, lon, valid)
        return 1

    def _vtg(self, fr):
        # NMEA 2.3+: 1 course T, 2 'T', 3 course M, 4 'M', 5 knots, 6 'N', 7 km/h, 8 'K', 9 mode
        # older:     1 course T, 2 course M, 3 knots, 4 km/h
        if fr.nf < 5:
            return -1
        if fr.nf >= 9 or fr.char(2) == 84:
            course = fr.num(1)
            kn = fr.num(5)
            kmh = fr.num(7)
        else:
            course = fr.num(1)
            kn = fr.num(3)
            kmh = fr.num(4)
        if fr.err:
            return -1
        if kmh is None and kn is not None:
            kmh = kn * KNOT_KMH
        fix = self.fix
        fix.course = course
        fix.speed_kmh = kmh
        return 1


def checksum(body):
    """XOR checksum of the text between '$' and '*' (str or bytes) -> int."""
    x = 0
    if isinstance(body, str):
        body = body.encode()
    for c in body:
        x ^= c
    return x


def sentence(body):
    """'GPGGA,...' -> b'$GPGGA,...*hh\\r\\n' (used by the replay peer and tests)."""
    return ("$%s*%02X\r\n" % (body, checksum(body))).encode()
