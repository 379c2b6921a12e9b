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
# Field parsing lives in gnss/fields.py (shared with the +CGPSINFO and $GNIFO sources), the Fix
# and its date handling (Fix.put) in gnss/fix.py.
#
# UartGnss(stream) is the source that feeds it: a GNSS module's NMEA on a UART (or a pty on the
# host); gnss/uart.py keeps that name for older imports.
#
# Precision: lat/lon are Python floats. On the ESP32 port MicroPython floats are single precision
# (~7 significant digits, about 1 m at these magnitudes); the host runtimes use doubles.
from core.compat import const, hexval, sleep_ms
from gnss.fields import FieldReader
from gnss.fix import KNOT_KMH, Fix, GnssSource

# line states
_IDLE = const(0)
_LINE = const(1)
_SKIP = const(2)


class NMEAParser:
    """Feed bytes, get the shared Fix updated. `maxlen` bounds a line (NMEA says 82 chars;
    real receivers stay under ~100); longer lines are rejected and skipped."""

    def __init__(self, fix=None, maxlen=120):
        self.fix = fix if fix is not None else Fix()
        self.buf = bytearray(maxlen)
        self.n = 0  # bytes of the line so far
        self.state = _IDLE
        self._fr = FieldReader(self.buf)

    def reset(self):
        """Drop any partial line (e.g. after the UART was reopened)."""
        self.n = 0
        self.state = _IDLE

    def feed(self, data, n=None):
        """Consume bytes (bytes/bytearray/memoryview; only the first n if given). Returns the
        number of sentences accepted (RMC/GGA/VTG that updated the fix) from this call."""
        buf = self.buf
        cap = len(buf)
        ln = self.n
        st = self.state
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
                    try:
                        r = self._sentence(ln)
                    except Exception:  # defensive: a parser bug must never kill the reader task
                        r = -1
                    if r > 0:
                        fix.accepted += 1
                        got += 1
                    elif r == 0:
                        fix.ignored += 1
                    elif r == -1:
                        fix.rejected += 1
                    # r == -2: dropped by Fix.put ((0,0) counted in rejected, jumps in jumps)
                    ln = 0
                elif ln >= cap or c < 32 or c > 126:
                    fix.rejected += 1  # overlong or non-ASCII: drop until the next '$'
                    st = _SKIP
                    ln = 0
                else:
                    buf[ln] = c
                    ln += 1
        self.n = ln
        self.state = st
        return got

    def _sentence(self, n):
        # -> 1 accepted, 0 ignored (well-formed, unused), -1 rejected, -2 dropped by Fix.put
        buf = self.buf
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
        a = fr.start[0]
        if fr.end[0] - a != 5 or buf[0] != 36 or buf[a] == 80:  # 'P'
            return 0
        t0 = buf[a + 2]
        t1 = buf[a + 3]
        t2 = buf[a + 4]
        fix = self.fix
        has_d = False
        if t0 == 82 and t1 == 77 and t2 == 67:  # RMC
            # 1 time, 2 status, 3 lat, 4 N/S, 5 lon, 6 E/W, 7 knots, 8 course, 9 date, 10-11 magvar, 12 mode
            if fr.count < 10:
                return -1
            has_t = fr.time(1)
            status = fr.char(2)
            lat = fr.latlon(3, 90)
            lon = fr.latlon(5, 180)
            kn = fr.num(7)
            course = fr.num(8)
            has_d = fr.date(9)
            mode = fr.char(12) if fr.count > 12 else None
            if fr.errors or (status is not None and status != 65 and status != 86):
                return -1
            valid = status == 65 and mode != 78  # 'A' and mode not 'N'
        elif t0 == 71 and t1 == 71 and t2 == 65:  # GGA
            # 1 time, 2 lat, 3 N/S, 4 lon, 5 E/W, 6 quality, 7 sats, 8 hdop, 9 alt, 10 M, 11 geoid sep
            if fr.count < 10:
                return -1
            has_t = fr.time(1)
            lat = fr.latlon(2, 90)
            lon = fr.latlon(4, 180)
            q = fr.uint(6)
            sats = fr.uint(7)
            hdop = fr.num(8)
            alt = fr.num(9)
            if fr.errors:
                return -1
            valid = bool(q)
        elif t0 == 86 and t1 == 84 and t2 == 71:  # VTG
            # NMEA 2.3+: 1 course T, 2 'T', 3 course M, 4 'M', 5 knots, 6 'N', 7 km/h, 8 'K', 9 mode
            # older:     1 course T, 2 course M, 3 knots, 4 km/h
            if fr.count < 5:
                return -1
            course = fr.num(1)
            if fr.count >= 9 or fr.char(2) == 84:
                kn = fr.num(5)
                kmh = fr.num(7)
            else:
                kn = fr.num(3)
                kmh = fr.num(4)
            if fr.errors:
                return -1
            fix.course = course
            fix.speed_kmh = kn * KNOT_KMH if kmh is None and kn is not None else kmh
            return 1
        else:
            return 0
        if (lat is None) != (lon is None):
            return -1
        if not fix.put(fr, lat, lon, valid, has_t, has_d):
            return -2
        if t0 == 82:  # RMC
            fix.speed_kmh = None if kn is None else kn * KNOT_KMH
            fix.course = course
        else:
            fix.quality = q
            fix.sats = sats
            fix.hdop = hdop
            fix.alt = alt
        return 1


class UartGnss(GnssSource):
    """Reads NMEA from a stream (core.stream interface: non-blocking readinto). The receiver is
    on by itself (power is the board's: board.gnss_power), so run() only reads."""

    def __init__(self, stream, parser=None, fix=None, jump_filter=True, poll_ms=20, chunk=128, clock=None, log=None):
        if parser is not None:
            fix = parser.fix
        GnssSource.__init__(self, fix, jump_filter, clock, log)
        self.parser = parser if parser is not None else NMEAParser(self._fix)
        self.stream = stream
        self.poll_ms = poll_ms
        self.buf = bytearray(chunk)
        self.bytes_in = 0
        self.ticks = None  # ticks_ms of the last byte received (None: nothing yet)
        self.error = None  # the exception that ended run() (a closed or broken stream)

    def poll(self):
        """Read and parse whatever is ready now; returns bytes read (0 if none)."""
        n = self.stream.readinto(self.buf)
        if n:
            self.bytes_in += n
            self.ticks = self.clock.ticks_ms()
            self.parser.feed(self.buf, n)
        return n or 0

    async def run(self):
        buf_len = len(self.buf)
        try:
            while True:
                n = self.poll()
                if n < buf_len:  # drained: let other tasks run
                    await sleep_ms(self.poll_ms)
        except Exception as e:  # a closed/broken stream: keep the reason, end the task
            self.error = e
            self._error("GNSS stream", e)
            raise

    def silent_ms(self):
        """ms since the last byte (None if nothing was ever received): a dead-module check."""
        if self.ticks is None:
            return None
        return self.clock.since(self.ticks)
