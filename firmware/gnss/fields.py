# Comma-separated fields over a preallocated bytearray, parsed without slicing: the NMEA parser
# (gnss/nmea.py) and the text replies of the modem (+CGPSINFO) and co-processor ($GNIFO) share it.
from gnss.fix import valid_date

_POW10 = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000)


class FieldReader:
    """load(start, end) splits buf[start:end] at commas; copy(text, start) first copies a reply
    line (str or bytes, printable ASCII) into buf. Parse methods return None for an empty field
    and set `self.err` (and return None) for a malformed one."""

    def __init__(self, buf, max_fields=40):
        self.buf = buf
        self.fs = [0] * max_fields  # field start offsets
        self.fe = [0] * max_fields  # field end offsets (exclusive)
        self.nf = 0
        self.err = False
        # time/date results (set by time()/date())
        self.h = self.mi = self.s = self.ms = 0
        self.y = self.mo = self.d = 0
        self._neg = False
        self._ip = self._fr = self._nfr = 0

    def copy(self, text, start=0, stop=b""):
        """Copy text[start:] up to the first byte of `stop` (or the end) into buf, trailing
        blanks dropped, and load it. False if it does not fit or has a non-printable byte."""
        buf = self.buf
        n = len(text)
        is_str = isinstance(text, str)
        w = 0
        for k in range(start, n):
            c = ord(text[k]) if is_str else text[k]
            if c < 32 or c > 126 or c in stop:
                if c < 256 and c in stop:
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

    def _dec(self, i):
        # -> True with self._neg, _ip (int part), _fr (fraction digits as int), _nfr (their
        # count) set (no tuple per field), or None; sets err on malformed
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
        self._neg = neg
        self._ip = ip
        self._fr = fr
        self._nfr = nfr
        return True

    def num(self, i):
        """Decimal field as float (e.g. '545.4', '-21.3', '0.117')."""
        if i >= self.nf or self.fs[i] == self.fe[i]:
            return None
        if self._dec(i) is None:
            return None
        v = self._ip + self._fr / _POW10[self._nfr] if self._nfr else float(self._ip)
        return -v if self._neg else v

    def latlon(self, i, hemi, max_deg):
        """(d)ddmm.mmmm field i with hemisphere field `hemi` -> signed float degrees."""
        if i >= self.nf or self.fs[i] == self.fe[i]:
            return None
        if self._dec(i) is None:
            return None
        if self._neg:
            self.err = True
            return None
        ip = self._ip
        deg = ip // 100
        mins = ip % 100 + (self._fr / _POW10[self._nfr] if self._nfr else 0.0)
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
        y = v % 100
        y += 1900 if y >= 69 else 2000  # POSIX %y: 69..99 -> 1969..1999, 00..68 -> 2000..2068
        if not valid_date(y, mo, d):
            self.err = True
            return None
        self.y = y
        self.mo = mo
        self.d = d
        return True
