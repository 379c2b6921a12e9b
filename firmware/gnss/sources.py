# GNSS sources. All three update one shared `Fix` (gnss/nmea.py) and expose `fix()`:
#
#   UartGnss(stream, parser=None)   a GNSS module's NMEA on a UART (or a pty on the host)
#   ModemGnss(at)                   the SIM7600's own GNSS: AT+CGPS=1,1 + periodic +CGPSINFO URCs
#   CoprocGnss(query)               the ONE+ co-processor's `ATGPS` reply: $GNIFO,...
#
# A jump filter (nmea.JumpFilter) is attached to the Fix: `Fix(jump_filter=JumpFilter(0.1))`, or
# pass `jump_filter=` to a source that creates its own Fix.
#
# ModemGnss catches `Exception` around AT commands rather than importing at.engine's ATError, so
# it works with any object honouring the engine contract (and asyncio.CancelledError, a
# BaseException on both runtimes, still propagates).
import asyncio

from core.compat import DEFAULT_CLOCK, sleep_ms
from gnss.nmea import KNOT_KMH, FieldReader, Fix, NMEAParser


class GnssError(Exception):
    """A GNSS source failed to start or stop; the message names the command and the reason."""


def _new_fix(fix, jump_filter):
    if fix is None:
        fix = Fix(jump_filter)
    elif jump_filter is not None:
        fix.jump_filter = jump_filter
    return fix


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


class UartGnss:
    """Reads NMEA from a stream (core.stream interface: non-blocking readinto) in its own task."""

    def __init__(self, stream, parser=None, fix=None, jump_filter=None, poll_ms=20, chunk=128, clock=None):
        if parser is None:
            parser = NMEAParser(_new_fix(fix, jump_filter))
        elif jump_filter is not None:
            parser.fix.jump_filter = jump_filter
        self.stream = stream
        self.parser = parser
        self.poll_ms = poll_ms
        self.clock = clock or DEFAULT_CLOCK
        self._buf = bytearray(chunk)
        self._task = None
        self.bytes_in = 0
        self.last_rx_ms = None  # ticks of the last byte received
        self.error = None  # last exception from the stream, if the task died

    def fix(self):
        return self.parser.fix

    def start(self):
        """Start the reader task (call inside a running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def poll(self):
        """Read and parse whatever is ready now; returns bytes read (0 if none)."""
        n = self.stream.readinto(self._buf)
        if n:
            self.bytes_in += n
            self.last_rx_ms = self.clock.ticks_ms()
            self.parser.feed(self._buf, n)
        return n or 0

    async def run(self):
        buf_len = len(self._buf)
        try:
            while True:
                n = self.poll()
                if n < buf_len:  # drained: let other tasks run
                    await sleep_ms(self.poll_ms)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a closed/broken stream: keep the reason, end the task
            self.error = e
            raise

    def silent_ms(self):
        """ms since the last byte (None if nothing was ever received): a dead-module check."""
        if self.last_rx_ms is None:
            return None
        return self.clock.since(self.last_rx_ms)


class _Fields:
    """A small preallocated line buffer + FieldReader for text replies (+CGPSINFO, $GNIFO)."""

    def __init__(self, size=128):
        self.buf = bytearray(size)
        self.fr = FieldReader(self.buf, max_fields=16)

    def load(self, text):
        if isinstance(text, str):
            text = text.encode()
        n = len(text)
        if n > len(self.buf):
            return False
        for k in range(n):
            c = text[k]
            if c < 32 or c > 126:
                return False
            self.buf[k] = c
        # strip trailing blanks / CR
        while n and self.buf[n - 1] == 32:
            n -= 1
        return self.fr.load(0, n)


def parse_cgpsinfo(text, fix, fields=None):
    """Parse the body of `+CGPSINFO: lat,N/S,lon,E/W,ddmmyy,hhmmss.s,alt,speed(knots),course`
    (prefix optional) into `fix`. All-empty fields (no fix) mark the fix invalid with unknown
    position. Returns True if accepted, False if malformed or dropped by the jump filter."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    i = text.find(":")
    if text.startswith("+CGPSINFO") and i >= 0:
        text = text[i + 1 :]
    text = text.strip()
    f = fields or _Fields()
    if not f.load(text):
        fix.rejected += 1
        return False
    fr = f.fr
    if fr.nf < 8:
        fix.rejected += 1
        return False
    lat = fr.latlon(0, 1, 90)
    lon = fr.latlon(2, 3, 180)
    has_d = fr.date(4)
    has_t = fr.time(5)
    alt = fr.num(6)
    kn = fr.num(7)
    course = fr.num(8) if fr.nf > 8 else None
    if fr.err or (lat is None) != (lon is None):
        fix.rejected += 1
        return False
    valid = lat is not None
    if valid and not fix.check_jump(lat, lon):
        return False
    if has_t:
        fix.set_time(fr.h, fr.mi, fr.s, fr.ms)
    if has_d:
        fix.set_date(fr.y, fr.mo, fr.d)
    fix.alt = alt
    fix.speed_kmh = None if kn is None else kn * KNOT_KMH
    fix.course = course
    fix.quality = 1 if valid else 0
    fix.set_position(lat, lon, valid)
    fix.accepted += 1
    return True


class ModemGnss:
    """The SIM7600's GNSS through the AT engine (contract: firmware/ARCHITECTURE.md).

    start(): [AT+CVAUXV=61, AT+CVAUXS=1 (active antenna supply; errors ignored)], AT+CGPS=1,1
    (if it answers ERROR, AT+CGPS? telling "+CGPS: 1" means it was already on), then
    AT+CGPSINFO=<interval_s> so the module reports `+CGPSINFO:` every interval_s seconds.
    stop(): AT+CGPSINFO=0, AT+CGPS=0. query(): one AT+CGPSINFO read."""

    def __init__(self, at, fix=None, jump_filter=None, interval_s=1, antenna_power=True, timeout_ms=3000):
        self.at = at
        self._fix = _new_fix(fix, jump_filter)
        self.interval_s = interval_s
        self.antenna_power = antenna_power
        self.timeout_ms = timeout_ms
        self.running = False
        self.reports = 0  # +CGPSINFO lines seen (URC or query)
        self.errors = 0  # failed fallback queries
        self._fields = _Fields()
        self._task = None
        at.on_urc("+CGPSINFO:", self._on_urc)

    def fix(self):
        return self._fix

    def _on_urc(self, line, body=None):
        self.feed(line)

    def feed(self, line):
        """Parse one `+CGPSINFO: ...` line (or its body); True if the fix was updated."""
        self.reports += 1
        return parse_cgpsinfo(line, self._fix, self._fields)

    async def start(self):
        at = self.at
        t = self.timeout_ms
        if self.antenna_power:
            for c in ("AT+CVAUXV=61", "AT+CVAUXS=1"):
                try:
                    await at.cmd(c, timeout_ms=t)
                except Exception:
                    pass  # not every SIM7600 firmware has these; the GNSS still works on passive antennas
        try:
            await at.cmd("AT+CGPS=1,1", timeout_ms=t)
        except Exception as e:
            # ERROR is also the answer when the GNSS is already running
            r = await at.cmd("AT+CGPS?", timeout_ms=t)
            v = r.value("+CGPS:")
            if not v or not v.startswith("1"):
                raise GnssError("AT+CGPS=1,1 failed (%s) and AT+CGPS? says %r: GNSS not started" % (e, v))
        await at.cmd("AT+CGPSINFO=%d" % self.interval_s, timeout_ms=t)
        self.running = True

    async def stop(self):
        at = self.at
        t = self.timeout_ms
        self.running = False
        try:
            await at.cmd("AT+CGPSINFO=0", timeout_ms=t)
        except Exception:
            pass
        try:
            await at.cmd("AT+CGPS=0", timeout_ms=t)
        except Exception as e:
            raise GnssError("AT+CGPS=0 failed: %s" % e)

    async def query(self):
        """One explicit read (AT+CGPSINFO); True if it updated the fix."""
        r = await self.at.cmd("AT+CGPSINFO", timeout_ms=self.timeout_ms)
        v = r.value("+CGPSINFO:")
        if v is None:
            return False
        return self.feed(v)

    async def run(self, clock=None):
        """Keep the fix fresh: when no +CGPSINFO report arrived for two intervals (a module or
        simulator that does not send the periodic URC), read it with AT+CGPSINFO."""
        clock = clock or DEFAULT_CLOCK
        period = self.interval_s * 1000
        while True:
            seen = self.reports
            await clock.sleep_ms(2 * period)
            if self.running and self.reports == seen:
                try:
                    await self.query()
                except Exception:
                    self.errors += 1

    def start_task(self):
        """Start run() as a task (after `await start()`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run())
        return self._task

    def stop_task(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None


def parse_gnifo(text, fix, fields=None, speed_knots=True, hdop_scale=1.0):
    """Parse the co-processor's `$GNIFO,date,time,lat*1e6,lng*1e6,alt*100,speed*100,
    heading*100,sats,hdop` (found anywhere in `text`) into `fix`.

    date is ddmmyy and time hhmmsscc as integers (TinyGPS style, leading zeros may be absent);
    date 0 means no fix. Speed is knots*100 like TinyGPS (speed_knots=False: km/h*100); hdop is
    taken as sent times hdop_scale. Returns True if accepted."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    i = text.find("$GNIFO,")
    if i < 0:
        return False
    text = text[i + 7 :]
    j = 0
    while j < len(text) and text[j] not in "\r\n>":
        j += 1
    text = text[:j]
    f = fields or _Fields()
    if not f.load(text) or f.fr.nf < 5:
        fix.rejected += 1
        return False
    fr = f.fr
    date = fr.uint(0)
    tm = fr.uint(1)
    lat = fr.sint(2)
    lng = fr.sint(3)
    alt = fr.sint(4)
    spd = fr.uint(5)
    hdg = fr.uint(6)
    sats = fr.uint(7)
    hdop = fr.num(8)
    if fr.err or not date or lat is None or lng is None:
        if fr.err:
            fix.rejected += 1
            return False
        fix.valid = False  # date 0: the co-processor has no fix yet
        fix.ignored += 1
        return False
    if not fr.set_date_int(date) or tm is None:
        fix.rejected += 1
        return False
    h = tm // 1000000
    mi = (tm // 10000) % 100
    s = (tm // 100) % 100
    if h > 23 or mi > 59 or s > 60 or abs(lat) > 90000000 or abs(lng) > 180000000:
        fix.rejected += 1
        return False
    latf = lat / 1000000
    lngf = lng / 1000000
    if not fix.check_jump(latf, lngf):
        return False
    fix.set_time(h, mi, s, (tm % 100) * 10)
    fix.set_date(fr.y, fr.mo, fr.d)
    fix.alt = None if alt is None else alt / 100
    if spd is None:
        fix.speed_kmh = None
    else:
        fix.speed_kmh = spd / 100 * (KNOT_KMH if speed_knots else 1.0)
    fix.course = None if hdg is None else hdg / 100
    fix.sats = sats
    fix.hdop = None if hdop is None else hdop * hdop_scale
    fix.quality = 1
    fix.set_position(latf, lngf, True)
    fix.accepted += 1
    return True


class CoprocGnss:
    """The co-processor's GNSS: `query` is an async callable that sends ATGPS and returns the
    reply text (the OBD link owner provides it). poll() reads once; run() polls every period."""

    def __init__(self, query, fix=None, jump_filter=None, period_ms=1000, speed_knots=True, hdop_scale=1.0):
        self.query = query
        self._fix = _new_fix(fix, jump_filter)
        self.period_ms = period_ms
        self.speed_knots = speed_knots
        self.hdop_scale = hdop_scale
        self._fields = _Fields()
        self._task = None
        self.errors = 0

    def fix(self):
        return self._fix

    async def poll(self):
        reply = await self.query()
        if not reply:
            return False
        return parse_gnifo(reply, self._fix, self._fields, self.speed_knots, self.hdop_scale)

    async def run(self):
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a link timeout: count it, try again next period
                self.errors += 1
            await sleep_ms(self.period_ms)

    def start(self):
        if self._task is None:
            self._task = asyncio.create_task(self.run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
