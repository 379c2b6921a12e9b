# GNSS parser and sources: runs on CPython and under MicroPython (-X heapsize=64K).
import asyncio
import gc

from core.compat import sleep_ms
from fakestream import BufferStream
from gnss.fix import Fix, JumpFilter, days_from_epoch
from gnss.nmea import NMEAParser
from gnss.sources import CoprocGnss, GnssError, ModemGnss, UartGnss, parse_cgpsinfo, wait_fix
from mptest import araises
from nmeatools import checksum, sentence

RMC = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"
GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
VTG = b"$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48\r\n"
GSV = b"$GPGSV,3,3,12,19,13,123,27,03,07,176,19,05,05,328,13,47,,,*41\r\n"
SOUTH = b"$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*62\r\n"
NOFIX_GGA = b"$GPGGA,081420.000,,,,,0,0,,,M,,M,,*47\r\n"
NOFIX_RMC = b"$GNRMC,081420.000,V,,,,,0.00,340.16,260514,,,N*58\r\n"


def _datetime(f):
    """(year, month, day, hour, minute, second) of a Fix, or None when its date or time is unknown."""
    if f.year is None or f.hour is None:
        return None
    return (f.year, f.month, f.day, f.hour, f.minute, f.second)


def _fixture_dir():
    # the MicroPython runner imports this module precompiled from a cache dir; the project root
    # is on sys.path on both runtimes
    import os
    import sys

    for root in sys.path:
        d = (root or ".") + "/host_tests/fixtures/nmea"
        try:
            os.stat(d)
            return d
        except OSError:
            pass
    raise AssertionError("host_tests/fixtures/nmea not found on sys.path")


def _close(a, b, tol=1e-6):
    return a is not None and b is not None and abs(a - b) <= tol


def _parse(*chunks):
    p = NMEAParser()
    for c in chunks:
        p.feed(c)
    return p.fix


def test_rmc_fields():
    f = _parse(RMC)
    assert f.accepted == 1 and f.rejected == 0
    assert f.valid
    assert _close(f.lat, 48 + 7.038 / 60)
    assert _close(f.lon, 11 + 31.0 / 60)
    assert _close(f.speed_kmh, 22.4 * 1.852, 1e-9)
    assert _close(f.course, 84.4)
    assert (f.year, f.month, f.day, f.hour, f.minute, f.second) == (1994, 3, 23, 12, 35, 19)
    # 1994-03-23 12:35:19 UTC
    assert f.epoch == days_from_epoch(1994, 3, 23) * 86400 + 12 * 3600 + 35 * 60 + 19
    assert f.alt is None and f.sats is None and f.hdop is None  # RMC carries none of these


def test_gga_and_vtg_fields():
    f = _parse(GGA, VTG)
    assert f.accepted == 2
    assert f.quality == 1 and f.valid and f.sats == 8
    assert _close(f.hdop, 0.9) and _close(f.alt, 545.4)
    assert _close(f.course, 54.7) and _close(f.speed_kmh, 10.2)
    assert f.epoch is None  # time only, no date yet
    assert _datetime(f) is None


def test_south_and_west_are_negative():
    f = _parse(SOUTH)
    assert f.lat < 0 and f.lon > 0
    assert _close(f.lat, -(37 + 51.65 / 60))
    f = _parse(b"$GPRMC,225446,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E*68\r\n")
    assert _close(f.lon, -(123 + 11.12 / 60)) and f.lat > 0


def test_any_talker_id():
    for talker in ("GP", "GN", "GL", "GA", "GB", "BD", "QZ"):
        body = talker + "GGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
        f = _parse(sentence(body))
        assert f.accepted == 1, talker
        assert _close(f.alt, 545.4)


def test_empty_fields_are_none_not_zero():
    f = _parse(GGA, NOFIX_GGA, NOFIX_RMC)
    assert f.accepted == 3
    assert not f.valid and not f.has_position()
    assert f.lat is None and f.lon is None
    assert f.alt is None and f.hdop is None
    assert f.sats == 0 and f.quality == 0
    assert f.speed_kmh == 0.0 and _close(f.course, 340.16)
    assert (f.year, f.month, f.day) == (2014, 5, 26)


def test_split_anywhere_gives_same_fix():
    stream = RMC + GSV + GGA + VTG + SOUTH
    ref = _parse(stream)
    for size in (1, 2, 3, 5, 7, 13, 64):
        p = NMEAParser()
        for i in range(0, len(stream), size):
            p.feed(stream[i : i + size])
        f = p.fix
        assert (f.accepted, f.ignored, f.rejected) == (ref.accepted, ref.ignored, ref.rejected) == (4, 1, 0)
        assert f.lat == ref.lat and f.lon == ref.lon and f.epoch == ref.epoch and f.alt == ref.alt


def test_feed_with_length_and_memoryview():
    buf = bytearray(200)
    buf[: len(RMC)] = RMC
    p = NMEAParser()
    assert p.feed(memoryview(buf), len(RMC)) == 1
    assert p.feed(buf, 0) == 0


def test_bad_and_missing_checksum_rejected():
    bad = RMC.replace(b"*6A", b"*6B")
    nocs = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W\r\n"
    badhex = RMC.replace(b"*6A", b"*6G")
    f = _parse(bad, nocs, badhex)
    assert f.accepted == 0 and f.rejected == 3 and f.lat is None
    # lowercase hex is still a valid checksum
    f = _parse(RMC.replace(b"*6A", b"*6a"))
    assert f.accepted == 1


def test_checksum_helper_matches_fixture():
    assert checksum("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K") == 0x48
    assert sentence("GPVTG,054.7,T,034.4,M,005.5,N,010.2,K") == VTG


def test_gsa_gsv_and_proprietary_ignored():
    f = _parse(
        GSV,
        b"$GNGSA,A,3,01,11,31,14,22,32,04,25,03,,,,1.56,0.91,1.27*15\r\n",
        b"$PSRFEPE,053229.438,V,,,,,*23\r\n",
        b"$GPZDA,202640.000,13,04,2015,,*54\r\n",
    )
    assert f.ignored == 4 and f.accepted == 0 and f.rejected == 0


def test_garbage_non_ascii_and_resync():
    junk = b"\x00\xff\xfe garbage $$$ \xb5\x62\x01\x07 more\r\n"
    broken = b"$GPGGA,123519,4807.0\xc38,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
    f = _parse(junk, broken, RMC, b"\r\n\r\n", junk, GGA)
    assert f.accepted == 2
    assert f.rejected >= 2  # the non-ASCII sentence and the '$$$' stubs
    assert _close(f.alt, 545.4)


def test_truncated_sentence_rejected_next_one_parses():
    cut = RMC[:30]
    f = _parse(cut + GGA)
    assert f.rejected == 1 and f.accepted == 1
    assert f.speed_kmh is None  # the cut RMC did not apply


def test_overlong_line_rejected_without_losing_sync():
    p = NMEAParser(maxlen=100)
    long = b"$GPGGA," + b"1" * 300 + b"*00\r\n"
    assert p.feed(long + RMC) == 1
    assert p.fix.rejected == 1 and p.fix.valid


def test_malformed_fields_rejected():
    cases = (
        "GPRMC,123519,A,4861.038,N,01131.000,E,022.4,084.4,230394,,",  # 61 minutes
        "GPRMC,123519,A,4807.038,X,01131.000,E,022.4,084.4,230394,,",  # hemisphere
        "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,310294,,",  # 31 Feb
        "GPRMC,123519,A,4807.038,N,01131.000,E,02x.4,084.4,230394,,",  # letter in a number
        "GPRMC,126519,A,4807.038,N,01131.000,E,022.4,084.4,230394,,",  # 65 minutes
        "GPRMC,123519,Q,4807.038,N,01131.000,E,022.4,084.4,230394,,",  # status
        "GPRMC,123519,A,4807.038,N,,E,022.4,084.4,230394,,",  # lat without lon
        "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9.1,545.4,M,46.9,M,,",  # two dots
        "GPGGA,123519,4807.038,N",  # too few fields
        "GPRMC,123519,A,9107.038,N,01131.000,E,022.4,084.4,230394,,",  # lat > 90
    )
    p = NMEAParser()
    for body in cases:
        p.feed(sentence(body))
    assert p.fix.rejected == len(cases), p.fix.rejected
    assert p.fix.accepted == 0 and p.fix.lat is None


def test_epoch_dates_and_leap_years():
    assert days_from_epoch(1970, 1, 1) == 0
    assert days_from_epoch(2000, 3, 1) == 11017
    assert days_from_epoch(2024, 2, 29) + 1 == days_from_epoch(2024, 3, 1)
    f = _parse(sentence("GNRMC,235959.50,A,4807.038,N,01131.000,E,0.0,,291224,,,A"))
    assert f.epoch == days_from_epoch(2024, 12, 29) * 86400 + 86399 and f.ms == 500
    f = _parse(sentence("GNRMC,000000,A,4807.038,N,01131.000,E,0.0,,290200,,,A"))
    assert (f.year, f.month, f.day) == (2000, 2, 29)


def test_gga_after_midnight_advances_date():
    f = _parse(
        sentence("GNRMC,235959.00,A,4807.038,N,01131.000,E,0.0,,311224,,,A"),
        sentence("GNGGA,000000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
    )
    assert (f.year, f.month, f.day, f.hour) == (2025, 1, 1, 0)
    assert f.epoch == days_from_epoch(2025, 1, 1) * 86400


def test_jump_filter_rejects_then_reanchors():
    fix = Fix(JumpFilter(max_deg=0.1, max_rejects=2))
    p = NMEAParser(fix)
    near = sentence("GNGGA,120000,4807.100,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
    far = sentence("GNGGA,120001,4907.100,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
    assert p.feed(GGA) == 1
    assert p.feed(near) == 1
    lat = fix.lat
    assert p.feed(far) == 0 and fix.jumps == 1 and fix.lat == lat
    assert p.feed(far) == 0 and fix.jumps == 2
    assert p.feed(far) == 1 and fix.lat > 49  # third in a row: the receiver really is there
    # filter off: everything accepted
    fix2 = Fix(JumpFilter(max_deg=None))
    p2 = NMEAParser(fix2)
    p2.feed(GGA)
    assert p2.feed(far) == 1 and fix2.jumps == 0


def test_real_fixture_files_parse_without_rejects():
    import os

    d = _fixture_dir()
    names = [n for n in os.listdir(d) if n.endswith(".nmea")]
    assert len(names) >= 4
    for n in names:
        p = NMEAParser()
        lines = 0
        with open(d + "/" + n, "rb") as fh:
            for ln in fh:
                if ln.startswith(b"$"):
                    lines += 1
                    p.feed(ln)
        f = p.fix
        assert f.rejected == 0, n
        assert f.accepted + f.ignored == lines, n
        assert f.accepted > 0, n


def test_ublox_fixture_values():
    d = _fixture_dir()
    p = NMEAParser()
    with open(d + "/ublox-neo-m8n.nmea", "rb") as fh:
        p.feed(fh.read())
    f = p.fix
    # last sentences: RMC/VTG/GGA at 17:19:42 on 2015-03-18
    assert f.valid and f.quality == 1 and f.sats == 12
    assert _close(f.lat, 44 + 4.13951 / 60) and _close(f.lon, -(121 + 18.85376 / 60))
    assert _close(f.alt, 1141.4) and _close(f.hdop, 1.12) and _close(f.speed_kmh, 0.091)
    assert f.course is None  # VTG course empty while almost stationary
    assert _datetime(f) == (2015, 3, 18, 17, 19, 42)


# --- sources -------------------------------------------------------------------------------


class FakeReply:
    def __init__(self, lines):
        self.lines = lines

    def value(self, prefix):
        for ln in self.lines:
            if ln.startswith(prefix):
                return ln[len(prefix) :].strip()
        return None


class FakeAT:
    """Minimal stand-in for at.engine.ATEngine: scripted replies, records commands."""

    def __init__(self, errors=(), replies=None):
        self.sent = []
        self.urcs = {}
        self.errors = set(errors)
        self.replies = replies or {}
        self.stats = {"reboots": 0}

    def on_urc(self, prefix, fn, body_len=None):
        self.urcs[prefix] = fn

    async def cmd(self, c, timeout_ms=1000, **kw):
        self.sent.append(c)
        if c in self.errors:
            raise RuntimeError("%s: ERROR" % c)
        return FakeReply(self.replies.get(c, []))

    def urc(self, line):
        for p, fn in self.urcs.items():
            if line.startswith(p):
                fn(line, None)


async def test_modem_gnss_start_urc_stop():
    at = FakeAT()
    g = ModemGnss(at, interval_s=5, jump_filter=None)
    await g.enable()
    assert at.sent == ["AT+CVAUXV=3050", "AT+CVAUXS=1", "AT+CGPS=1,1", "AT+CGPSINFO=5"]
    assert g.running
    at.urc("+CGPSINFO: ,,,,,,,,")
    f = g.fix()
    assert not f.valid and f.lat is None and f.alt is None and f.accepted == 1
    at.urc("+CGPSINFO: 3113.343286,N,12121.234064,E,250311,072809.3,44.1,0.0,0")
    assert f.valid and f.has_position()
    assert _close(f.lat, 31 + 13.343286 / 60, 1e-9) and _close(f.lon, 121 + 21.234064 / 60, 1e-9)
    assert _close(f.alt, 44.1) and f.speed_kmh == 0.0 and f.course == 0.0
    assert _datetime(f) == (2011, 3, 25, 7, 28, 9) and f.ms == 300
    at.urc("+CGPSINFO: 3113.343286,S,12121.234064,W,250311,072810.3,44.1,10.0,")
    assert f.lat < 0 and f.lon < 0 and f.course is None and _close(f.speed_kmh, 18.52)
    at.urc("+CGPSINFO: 3113.3x3286,N,12121.234064,E,250311,072809.3,44.1,0.0,0")
    assert f.rejected == 1 and f.lat < 0
    await g.off()
    assert at.sent[-2:] == ["AT+CGPSINFO=0", "AT+CGPS=0"] and not g.running


async def test_modem_gnss_already_on_and_failure():
    at = FakeAT(errors=("AT+CGPS=1,1", "AT+CVAUXV=3050"), replies={"AT+CGPS?": ["+CGPS: 1,1"]})
    g = ModemGnss(at)
    await g.enable()  # ERROR from CGPS=1,1 but CGPS? says it runs; CVAUXV error tolerated
    assert "AT+CGPS?" in at.sent and at.sent[-1] == "AT+CGPSINFO=1"
    at2 = FakeAT(errors=("AT+CGPS=1,1",), replies={"AT+CGPS?": ["+CGPS: 0,1"]})
    e = await araises(GnssError, ModemGnss(at2, antenna_power=False).enable())
    assert "AT+CGPS=1,1" in str(e)


async def test_modem_gnss_query():
    at = FakeAT(replies={"AT+CGPSINFO": ["+CGPSINFO: 3113.343286,N,12121.234064,E,250311,072809.3,44.1,0.0,0"]})
    g = ModemGnss(at)
    assert await g.query()
    assert g.fix().valid and g.reports == 1
    assert parse_cgpsinfo("garbage", g.fix()) is False


async def test_coproc_gnss():
    replies = [
        "ATGPS\r$GNIFO,0,0,0,0,0,0,0,0,0\r>",
        "$GNIFO,250311,7280930,31222389,121353901,4410,1000,9050,9,12",
        "$GNIFO,50311,7281030,-33867500,151206990,-510,0,0,7,9\r",
        "$GNIFO,250311,7281,3x,1,1,1,1,1,1",
        "NO DATA",
    ]

    async def query():
        return replies.pop(0)

    g = CoprocGnss(query, jump_filter=None)  # the replies jump across the globe
    f = g.fix()
    assert not await g.poll() and not f.valid
    assert await g.poll()
    assert f.valid and _close(f.lat, 31.222389) and _close(f.lon, 121.353901)
    assert _close(f.alt, 44.1) and _close(f.speed_kmh, 10 * 1.852) and _close(f.course, 90.5)
    assert f.sats == 9 and f.hdop == 12
    assert _datetime(f) == (2011, 3, 25, 7, 28, 9) and f.ms == 300
    assert await g.poll()  # date without leading zero: 05/03/2011
    assert (f.day, f.month) == (5, 3) and f.lat < 0 and _close(f.alt, -5.1)
    assert not await g.poll() and f.rejected == 1
    assert not await g.poll()


async def test_uart_gnss_task_reads_stream():
    s = BufferStream()
    g = UartGnss(s, poll_ms=2, chunk=16)
    g.start()
    try:
        assert await wait_fix(g, 20, poll_ms=2) is None  # nothing yet
        s.feed(b"noise\r\n" + NOFIX_GGA + RMC[:20])
        s.feed(RMC[20:] + GGA)
        f = await wait_fix(g, 5000, poll_ms=2)
        assert f is not None and f.valid and _close(f.alt, 545.4)
        assert g.bytes_in > 0 and g.silent_ms() is not None
    finally:
        g.stop()
    await sleep_ms(5)


def test_retained_memory_bounded_over_1000_sentences():
    p = NMEAParser()
    msgs = (RMC, GGA, VTG, GSV, NOFIX_RMC)
    for m in msgs:  # warm up: first-use allocations (attributes, floats) are not growth
        p.feed(m)
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    for i in range(1000):
        p.feed(msgs[i % 5])
    gc.collect()
    after = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    assert p.fix.accepted == 4 + 800 and p.fix.ignored == 1 + 200
    if not hasattr(gc, "mem_alloc"):  # CPython: the behaviour is checked under MicroPython
        return
    assert after - before < 2048, "retained heap grew by %d bytes" % (after - before)


class FastClock:
    """A clock whose sleeps take 1 ms: the fallback poller's periods without real waiting."""

    def __init__(self):
        self.slept = 0

    def ticks_ms(self):
        return 0

    def diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.slept += ms
        return sleep_ms(1)


async def test_modem_gnss_polls_when_no_urc_arrives():
    line = "+CGPSINFO: 3113.343286,N,12121.234064,E,250311,072809.3,44.1,0.0,0"
    at = FakeAT(replies={"AT+CGPSINFO": [line]})
    clock = FastClock()
    g = ModemGnss(at, interval_s=1, antenna_power=False, clock=clock)
    await g.enable()
    task = asyncio.create_task(g.run())
    try:
        for _ in range(200):
            if g.reports:
                break
            await sleep_ms(1)
        assert g.reports >= 1 and g.fix().valid
        assert "AT+CGPSINFO" in at.sent and clock.slept >= 2000
    finally:
        task.cancel()
    await sleep_ms(2)


def test_delimiters_inside_the_body_are_rejected_even_with_a_matching_checksum():
    # found by the fuzzer: a duplicated ",M,,*" twice keeps the XOR checksum valid
    p = NMEAParser()
    p.feed(b"$GNGGA,171926.00,4404.14063,N,12118.85478,W,1,12,0.91,1147.2,M,-21.3,M,,*,M,,*,M,,*44\r\n")
    assert p.fix.accepted == 0 and p.fix.rejected == 1
    p.feed(b"$GNGGA,171926.00,4404.14063,N,12118.85478,W,1,12,0.91,1147.2,M,-21.3,M,,*44\r\n")
    assert p.fix.accepted == 1


def test_sources_finder_answers_then_leaves_sys_modules_on_the_device():
    import sys

    import gnss.sources as gs

    src = gs.ModemGnss
    assert src.__name__ == "ModemGnss" and gs.wait_fix is wait_fix
    if sys.implementation.name == "micropython":
        assert "gnss.sources" not in sys.modules  # used at boot: its heap goes once it has answered
    assert getattr(gs, "NoSuchSource", None) is None  # an unknown name is an AttributeError


def test_field_reader_numbers_times_and_dates():
    from gnss.fields import FieldReader

    fr = FieldReader(bytearray(96), 16)
    assert fr.copy("4851.417800,N,00221.213400,W,-21.30,+0.5,.5,7.,123519.5678,123519,290224,290223", 0)
    assert fr.count == 12 and not fr.errors
    lat = fr.latlon(0, 90)
    assert abs(lat - (48 + 51.4178 / 60)) < 1e-5, lat  # six fraction digits (the modem's form) stay exact
    assert abs(fr.latlon(2, 180) + (2 + 21.2134 / 60)) < 1e-5
    assert abs(fr.num(4) + 21.3) < 1e-6 and fr.num(5) == 0.5 and fr.num(6) == 0.5 and fr.num(7) == 7.0
    assert fr.time(8) and (fr.hour, fr.minute, fr.second, fr.ms) == (12, 35, 19, 567)
    assert fr.time(9) and fr.ms == 0
    assert fr.date(10) and (fr.year, fr.month, fr.day) == (2024, 2, 29)
    assert not fr.errors
    assert fr.date(11) is None and fr.errors  # 29 February 2023 is no date
    for bad in ("1..2", "+-1", "-", ".", "12a", "1234567890"):
        assert fr.copy(bad, 0) and fr.num(0) is None and fr.errors, bad
    for bad in ("12:35:19", "1235.19", "+12351", "123519.5.1", "123519.5x", "246000"):
        assert fr.copy(bad, 0) and fr.time(0) is None and fr.errors, bad
    assert fr.copy("-4851.4178,N", 0) and fr.latlon(0, 90) is None and fr.errors  # sign in a latitude
    assert fr.copy("4861.0000,N", 0) and fr.latlon(0, 90) is None and fr.errors  # 61 minutes
    assert fr.copy("4851.4178,E", 0) and fr.latlon(0, 90) is None and fr.errors  # wrong hemisphere
    assert fr.copy(",,", 0) and fr.num(0) is None and fr.time(1) is None and fr.date(2) is None and not fr.errors
    assert fr.date(None, 150324) and (fr.year, fr.month, fr.day) == (2024, 3, 15)  # the integer form ($GNIFO)
