# Comma-separated fields over a preallocated bytearray, parsed without slicing: the NMEA parser
# (gnss/nmea.py) and the text replies of the modem (+CGPSINFO) and co-processor ($GNIFO) share it.
from core.errors import lookup
from gnss.fix import valid_date


class FieldReader:
    """load(start, end) splits buf[start:end] at commas (field i is buf[self.start[i]:self.end[i]],
    `count` fields); copy(text, start) first copies a reply line (str or bytes, printable ASCII)
    into buf. Parse methods return None for an empty field and, for a malformed one, set
    `errors` (reset by load) and return None. time() and date() leave their result in hour,
    minute, second, ms and year, month, day (the names Fix has); n: the most fields a line has."""

    def __init__(self, buf, n=40):  # (run once: its body is gnss/wait.py's)
        lookup("gnss.wait", "new", self, buf, n)

    if 1 - 1:  # set by the constructor: declared for the type checker only (see telelogger/loop.py)
        from typing import Any
    buf: "Any"
    start: "Any"
    end: "Any"
    count: int
    errors: int
    hour: int
    minute: int
    second: int
    ms: int
    year: int
    month: int
    day: int
    data: int
    exp: int

    def copy(self, text, start=0, stop=b""):
        """Copy text[start:] up to the first byte of `stop` (or the end) into buf, trailing
        blanks dropped, and load it. False if it does not fit or has a non-printable byte.
        text: str (its UTF-8 bytes: a str indexed by position would intern each character as a
        name on MicroPython), bytes, bytearray or memoryview."""
        buf = self.buf
        if isinstance(text, str):
            try:
                text = memoryview(text)  # pyright: ignore[reportArgumentType] - MicroPython: the str's bytes, no copy
            except TypeError:
                text = text.encode()  # CPython
        w = 0
        for k in range(start, len(text)):
            c = text[k]
            if c < 32 or c > 126 or c in stop:
                if c in stop:
                    break
                return False
            if w >= len(buf):
                return False
            buf[w] = c
            w += 1
        while w and buf[w - 1] == 32:
            w -= 1
        return self.load(0, w)

    def load(self, start, end):
        buf = self.buf
        fs = self.start
        fe = self.end
        nf = 0
        fs[0] = start
        for i in range(start, end):
            if buf[i] == 44:  # ','
                fe[nf] = i
                nf += 1
                if nf >= len(fs):
                    self.count = nf
                    return False
                fs[nf] = i + 1
        fe[nf] = end
        self.count = nf + 1
        self.errors = 0
        return True

    def char(self, i):
        """The single byte of field i (int), None if empty; malformed if longer than one."""
        if i >= self.count:
            return None
        s = self.start[i]
        e = self.end[i]
        if s == e:
            return None
        if e - s != 1:
            self.errors = 1
            return None
        return self.buf[s]

    def _int(self, s, e):
        # the digits buf[s:e] as an int; -1 if one is not a digit
        buf = self.buf
        v = 0
        while s < e:
            c = buf[s] - 48
            if c < 0 or c > 9:
                return -1
            v = v * 10 + c
            s += 1
        return v

    def uint(self, i):
        """Unsigned integer field (at most 9 digits)."""
        if i >= self.count:
            return None
        s = self.start[i]
        e = self.end[i]
        if s == e:
            return None
        v = self._int(s, e) if e - s <= 9 else -1
        if v < 0:
            self.errors = 1
            return None
        return v

    def _dec(self, i):
        # decimal field i ('-21.3', '4807.038') -> its integer part with the sign (-21, 4807), the
        # fraction digits as an integer with the same sign in self.data (-3, 38) and their count
        # in self.exp (at most 9 kept; at most 9 digits before the point); None if empty, or
        # malformed (errors set). Two small ints rather than one: no long int on the device.
        if i >= self.count:
            return None
        buf = self.buf
        s = self.start[i]
        e = self.end[i]
        if s == e:
            return None
        neg = buf[s] == 45
        if neg or buf[s] == 43:  # '-' '+'
            s += 1
        ip = 0
        nip = 0
        fr = 0
        nfr = -1  # fraction digits, -1 before the point
        while s < e:
            c = buf[s] - 48
            if c == -2:  # '.'
                if nfr >= 0:
                    nip = 99
                    break
                nfr = 0
            elif c < 0 or c > 9:
                nip = 99
                break
            elif nfr < 0:
                nip += 1
                ip = ip * 10 + c
            elif nfr < 9:
                nfr += 1
                fr = fr * 10 + c
            s += 1
        if nip > 9 or (nip == 0 and nfr <= 0):
            self.errors = 1
            return None
        self.exp = nfr if nfr > 0 else 0
        self.data = -fr if neg else fr
        return -ip if neg else ip

    def num(self, i):
        """Decimal field as float (e.g. '545.4', '-21.3', '0.117')."""
        v = self._dec(i)
        if v is None:
            return None
        return v + self.data / 10 ** self.exp if self.exp else float(v)

    def latlon(self, i, limit):
        """(d)ddmm.mmmm field i with its hemisphere in field i + 1 (N/S when limit is 90, else E/W)
        -> signed float degrees, at most `limit`."""
        v = self._dec(i)
        if v is None:
            return None
        deg = v // 100
        mins = v % 100 + self.data / 10 ** self.exp
        if v < 0 or self.data < 0 or mins >= 60.0 or deg > limit:
            self.errors = 1
            return None
        v = deg + mins / 60.0
        h = self.char(i + 1)
        if v <= limit:
            if h == (83 if limit == 90 else 87):  # 'S' / 'W'
                return -v
            if h == (78 if limit == 90 else 69):  # 'N' / 'E'
                return v
        self.errors = 1
        return None

    def time(self, i):
        """hhmmss[.sss] -> True with hour/minute/second/ms set; None if empty."""
        if i >= self.count:
            return None
        s = self.start[i]
        e = self.end[i]
        if s == e:
            return None
        v = self._int(s, s + 6) if e - s >= 6 else -1
        ms = 0
        if v >= 0 and e > s + 6:  # '.' and the fraction: ms from its first three digits
            ms = self._int(s + 7, e) if self.buf[s + 6] == 46 else -1
            if ms >= 0:
                ms = ms * 1000 // 10 ** (e - s - 7)
        h = v // 10000
        mi = (v // 100) % 100
        sec = v % 100
        if v < 0 or ms < 0 or h > 23 or mi > 59 or sec > 60:
            self.errors = 1
            return None
        self.hour = h
        self.minute = mi
        self.second = sec
        self.ms = ms
        return True

    def date(self, i, v=None):
        """ddmmyy field i (or the integer v, e.g. 230394) -> True with year/month/day set
        (POSIX %y: 69..99 -> 1969..1999, 00..68 -> 2000..2068); None if empty."""
        if v is None:
            if i >= self.count or self.start[i] == self.end[i]:
                return None
            if self.end[i] - self.start[i] != 6:
                self.errors = 1
                return None
            v = self.uint(i)
            if v is None:
                return None
        d = v // 10000
        mo = (v // 100) % 100
        y = v % 100
        y += 1900 if y >= 69 else 2000
        if not valid_date(y, mo, d):
            self.errors = 1
            return None
        self.year = y
        self.month = mo
        self.day = d
        return True
