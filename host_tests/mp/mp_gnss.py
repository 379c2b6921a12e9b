# GNSS sources: one lifecycle (gnss/base.py), re-enabling the modem GNSS after a module restart,
# the jump / (0,0) / staleness guards built in. Runs on CPython and under MicroPython.

from core.compat import sleep_ms, ticks_add, ticks_ms
from fakestream import BufferStream
from gnss.fix import Fix, GnssSource
from gnss.nmea import NMEAParser
from gnss.sources import CoprocGnss, ModemGnss, UartGnss, parse_cgpsinfo
from nmeatools import sentence

PARIS = "+CGPSINFO: 4851.393100,N,00220.293354,E,011226,101500.0,35.0,0.0,0"
# the SIM7600 corruption seen in the field: the latitude lost its minutes -> 0.8 degrees
CORRUPT = "+CGPSINFO: 48,N,00250.293354,E,011226,101501.0,35.0,0.0,0"
NULL = "+CGPSINFO: 0000.000000,N,00000.000000,E,011226,101502.0,0.0,0.0,0"


class Reply:
    def __init__(self, lines):
        self.lines = lines

    def value(self, prefix):
        for ln in self.lines:
            if ln.startswith(prefix):
                return ln[len(prefix):].strip()
        return None


class FakeAT:
    """The engine contract ModemGnss uses: cmd, on_urc, stats["reboots"] (RDY count)."""

    def __init__(self, cgps="1,1"):
        self.sent = []
        self.urcs = {}
        self.stats = {"reboots": 0}
        self.cgps = cgps  # what AT+CGPS? answers
        self.fail = set()

    def on_urc(self, prefix, fn, body_len=None):
        self.urcs[prefix] = fn

    async def cmd(self, c, timeout_ms=1000, **kw):
        self.sent.append(c)
        if c in self.fail:
            raise RuntimeError("%s: ERROR" % c)
        if c == "AT+CGPS?":
            return Reply(["+CGPS: " + self.cgps])
        return Reply([])

    def enables(self):
        return self.sent.count("AT+CGPS=1,1")


class Log:
    def __init__(self):
        self.lines = []

    def warn(self, fmt, *args):
        self.lines.append(fmt % args)


class Clock:
    """Sleeps take 1 ms of real time whatever they ask for."""

    def ticks_ms(self):
        return ticks_ms()

    def diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        return sleep_ms(1)


async def _until(cond, n=300):
    for _ in range(n):
        if cond():
            return True
        await sleep_ms(1)
    return cond()


async def test_modem_gnss_reenabled_after_an_unasked_rdy():
    at = FakeAT()
    g = ModemGnss(at, antenna_power=False, clock=Clock())
    g.start()
    try:
        assert await _until(lambda: at.enables() == 1)
        at.stats["reboots"] += 1  # the engine saw RDY: the module restarted, its GNSS is off
        assert await _until(lambda: at.enables() == 2), at.sent
        assert g.running and g.enables == 2
    finally:
        g.stop()
    await sleep_ms(2)


async def test_modem_gnss_reenabled_when_the_module_says_it_is_off():
    at = FakeAT(cgps="1,1")
    g = ModemGnss(at, antenna_power=False, clock=Clock())
    g.start()
    try:
        assert await _until(lambda: at.enables() == 1)
        at.cgps = "0,1"  # e.g. a power cycle after AT+CPOF whose RDY was lost
        assert await _until(lambda: at.enables() == 2), at.sent
        at.cgps = "1,1"
        g.restart()  # the cellular re-init / standby wake says so
        assert await _until(lambda: at.enables() == 3), at.sent
    finally:
        g.stop()
    await sleep_ms(2)


async def test_modem_gnss_enable_failure_goes_to_the_log_and_is_retried():
    at = FakeAT(cgps="0,1")
    at.fail.add("AT+CGPS=1,1")
    log = Log()
    g = ModemGnss(at, antenna_power=False, clock=Clock(), log=log, retry_ms=5)
    g.start()
    try:
        assert await _until(lambda: at.enables() >= 2)
        assert g.errors >= 2 and "AT+CGPS=1,1" in g.last_error
        assert log.lines and "AT+CGPS=1,1" in log.lines[0] and "GNSS not started" in log.lines[0]
        at.fail.clear()
        assert await _until(lambda: g.running)
    finally:
        g.stop()
    await sleep_ms(2)


def test_jump_filter_is_built_into_the_modem_source():
    g = ModemGnss(FakeAT())
    f = g.fix()
    assert g.feed(PARIS) and f.valid and abs(f.lat - 48.8565) < 0.001
    assert not g.feed(CORRUPT)
    assert f.jumps == 1 and abs(f.lat - 48.8565) < 0.001 and f.second == 0


def test_jump_filter_is_built_into_uart_and_coproc_sources():
    u = UartGnss(BufferStream())
    assert u.fix().jump_filter is not None
    c = CoprocGnss(None)
    assert c.fix().jump_filter is not None
    assert UartGnss(BufferStream(), jump_filter=None).fix().jump_filter is None


def test_null_island_is_never_a_position():
    g = ModemGnss(FakeAT())
    assert not g.feed(NULL)
    f = g.fix()
    assert not f.valid and f.lat is None and f.rejected == 1
    p = NMEAParser(Fix())
    p.feed(sentence("GPRMC,101500,A,0000.0000,N,00000.0000,E,0.0,0.0,011226,,,A"))
    p.feed(sentence("GPGGA,101500,0000.0000,N,00000.0000,E,1,08,0.9,545.4,M,46.9,M,,"))
    assert p.fix.accepted == 0 and not p.fix.valid and p.fix.lat is None
    c = CoprocGnss(None)
    from gnss.coproc import parse_gnifo

    assert not parse_gnifo("$GNIFO,11226,10150000,0,0,0,0,0,5,9", c.fix())
    assert not c.fix().valid and c.fix().rejected == 1


def test_coproc_sign_without_digits_is_malformed():
    from gnss.coproc import parse_gnifo

    f = Fix()
    assert parse_gnifo("$GNIFO,11226,10150100,48856550,2347220,-3500,0,0,9,12", f) and f.alt == -35.0
    for bad in ("-", "-x"):
        assert not parse_gnifo("$GNIFO,11226,10150200,%s,2347220,3500,0,0,9,12" % bad, f)
    assert f.rejected == 2 and f.ignored == 0 and f.accepted == 1


def test_a_stale_position_is_not_current():
    s = BufferStream()
    g = UartGnss(s)
    g.parser.feed(sentence("GPRMC,101500,A,4851.3931,N,00220.2933,E,0.0,0.0,011226,,,A"))
    f = g.fix()
    assert f.valid and f.has_position() and f.expired == 0
    f.ticks = ticks_add(ticks_ms(), -(GnssSource.stale_ms + 1))  # no fresh sentence for longer than the bound
    assert not g.fix().valid and not g.fix().has_position() and f.expired == 1
    g.parser.feed(sentence("GPRMC,101511,A,4851.3931,N,00220.2933,E,0.0,0.0,011226,,,A"))
    assert g.fix().valid


def test_modem_position_goes_stale_without_reports():
    g = ModemGnss(FakeAT())
    assert g.feed(PARIS) and g.fix().valid
    g._fix.ticks = ticks_add(ticks_ms(), -(GnssSource.stale_ms + 1))
    assert not g.fix().valid


async def test_coproc_repeating_the_same_fix_does_not_keep_it_current():
    reply = "$GNIFO,11226,10150000,48856550,2347220,3500,0,0,9,12"
    calls = []

    async def query():
        calls.append(1)
        return reply

    g = CoprocGnss(query)
    assert await g.poll() and g.fix().valid
    u = g.fix().updates
    assert not await g.poll()  # same date and time: the same fix again
    assert g.fix().updates == u and g.fix().ignored == 1
    g._fix.ticks = ticks_add(ticks_ms(), -(GnssSource.stale_ms + 1))
    assert not g.fix().valid
    reply = "$GNIFO,11226,10150100,48856550,2347220,3500,0,0,9,12"
    assert await g.poll() and g.fix().valid


class FakeObd:
    def __init__(self):
        self.gnss_started = False
        self.sent = []

    async def coproc_gnss(self):
        if not self.gnss_started:
            self.sent.append("ATGPSON")
            self.gnss_started = True
        self.sent.append("ATGPS")
        return "$GNIFO,0,0,0,0,0,0,0,0,0"

    async def gnss_off(self):
        self.sent.append("ATGPSOFF")
        self.gnss_started = False


async def test_coproc_source_lifecycle_through_the_obd():
    obd = FakeObd()
    g = CoprocGnss(obd, period_ms=1)
    g.start()
    try:
        assert await _until(lambda: obd.sent.count("ATGPS") >= 2)
        assert obd.sent[0] == "ATGPSON" and obd.sent.count("ATGPSON") == 1
        g.restart()  # the co-processor was reset: start its GNSS again
        assert await _until(lambda: obd.sent.count("ATGPSON") == 2)
    finally:
        g.stop()
    await g.off()
    assert obd.sent[-1] == "ATGPSOFF"
    await sleep_ms(2)


async def test_every_source_has_the_same_lifecycle():
    for g in (UartGnss(BufferStream()), ModemGnss(FakeAT(), clock=Clock()), CoprocGnss(FakeObd(), period_ms=1)):
        for name in ("fix", "run", "start", "stop", "restart", "off"):
            assert hasattr(g, name), (g, name)
        t = g.start()
        assert g.start() is t
        await sleep_ms(3)
        g.stop()
        await sleep_ms(1)
        assert g.fix() is g.fix()


def test_parse_cgpsinfo_allocates_little():
    import gc

    g = ModemGnss(FakeAT())
    fr = g._fields
    fix = g.fix()
    for _ in range(3):
        parse_cgpsinfo(PARIS, fix, fr)
    if not hasattr(gc, "mem_alloc"):
        return
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(20):
        parse_cgpsinfo(PARIS, fix, fr)
    used = gc.mem_alloc() - a
    gc.enable()
    assert used < 20 * 400, "parse_cgpsinfo allocated %d bytes per line" % (used // 20)




def test_fix_repr_names_its_fields_and_leaves_no_module_behind():
    import sys

    f = Fix()
    assert parse_cgpsinfo(PARIS, f)
    had = "gnss.wait" in sys.modules
    r = repr(f)
    assert r.startswith("<Fix valid=True lat=48.85") and "alt=35.0" in r and "epoch=%d>" % f.epoch in r, r
    assert ("gnss.wait" in sys.modules) == had  # its text read for the call only


def test_parse_cgpsinfo_reads_str_bytes_and_bytearray_alike():
    # the engine hands URC lines as str: read through its bytes (a str indexed by position interns
    # each character as a name on MicroPython); the prefix and the blanks after it are optional
    got = []
    for line in (PARIS, PARIS.encode(), bytearray(PARIS.encode()), PARIS[10:], "  " + PARIS[11:] + "\r\n"):
        f = Fix()
        assert parse_cgpsinfo(line, f), line
        got.append((f.lat, f.lon, f.alt, f.epoch, f.hour, f.day))
    assert all(g == got[0] for g in got), got
    assert abs(got[0][0] - 48.8565516) < 1e-6 and abs(got[0][1] - 2.3382226) < 1e-6
    f = Fix()
    assert not parse_cgpsinfo(PARIS.replace("N", "\u00d1"), f) and f.rejected == 1  # a non-ASCII byte
    assert not parse_cgpsinfo("+CGPSINFO: 4851.393100,N,00220.293354", f) and f.rejected == 2  # too few fields


async def test_modem_gnss_without_cgps_query_is_still_polled():
    at = FakeAT()
    at.fail.add("AT+CGPS?")
    g = ModemGnss(at, antenna_power=False, clock=Clock())
    g.start()
    try:
        assert await _until(lambda: at.sent.count("AT+CGPSINFO") >= 2), at.sent
        assert at.enables() == 1
    finally:
        g.stop()
    await sleep_ms(2)


async def test_modem_gnss_on_the_real_engine_comes_back_after_rdy():
    # the real AT engine counts the module's RDY: an unasked restart, or the boot after AT+CPOF and
    # a power-key press; the GNSS is off after it and must be switched on again
    from at.engine import ATEngine
    from fakemodem import ScriptedModem

    m = ScriptedModem()
    for c in ("AT+CGPS=1,1", "AT+CGPSINFO=1", "AT+CMEE?"):
        m.rules[c] = b"\r\nOK\r\n"
    m.rules["AT+CGPS?"] = b"\r\n+CGPS: 1,1\r\n\r\nOK\r\n"
    m.rules["AT+CGPSINFO"] = ("\r\n" + PARIS + "\r\n\r\nOK\r\n").encode()
    at = ATEngine(m.stream, poll_ms=1)
    at.start()
    g = ModemGnss(at, antenna_power=False, interval_s=1, clock=Clock())  # its periods take 1 ms here
    g.start()
    try:
        assert await _until(lambda: m.cmds.count("AT+CGPS=1,1") == 1, 500)
        m.feed(b"\r\nRDY\r\n")
        assert await _until(lambda: m.cmds.count("AT+CGPS=1,1") == 2, 500), m.cmds
        m.feed(("\r\n" + PARIS + "\r\n").encode())  # the periodic report after it
        assert await _until(lambda: g.fix().valid, 500)
    finally:
        g.stop()
        at.stop()
    await sleep_ms(2)


def test_stale_bound_covers_slow_report_periods():
    assert ModemGnss(FakeAT()).stale_ms == GnssSource.stale_ms == 10000
    assert ModemGnss(FakeAT(), interval_s=30).stale_ms == 90000
    assert CoprocGnss(None, period_ms=5000).stale_ms == 15000
