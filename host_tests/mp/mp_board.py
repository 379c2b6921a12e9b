# board: descriptions, devType mapping, device id, the ESP32 board over a fake `machine`,
# the host board (both runtimes).
import json

from board import BoardError, DeepSleep, battery_volts, device_id_from_mac
from board import load_board as _load
from board.esp32 import Board
from board.host import FakePin, HostBoard
from core.stream import UartStream
from board.desc import apply_devtype, board_for_devtype, parse_devtype, parse_host_args, validate_board
from mptest import raises

NAMES = ("oneplus-a", "oneplus-b", "oneplus-h", "esp32-sim7600")


# the suite runs from build/mptests under MicroPython, from the repo root on CPython
DIRS = ("boards", "../../boards")


def load_board(name, devtype=None):
    return _load(name, devtype, DIRS)


def _copy(d):
    return json.loads(json.dumps(d))


def test_all_board_files_load_and_validate():
    for n in NAMES:
        d = load_board(n)
        assert d["name"] == n
        assert d["modem"]["baud"] == 115200
        assert d["coproc"]["rx"] == 13 and d["coproc"]["tx"] == 14 and d["coproc"]["reset"] == 15
        b = d["battery"]
        assert b["source"] == "adc" and b["scale_num"] == 45 and b["scale_den"] == 4095
        by_path = None
        for dname in DIRS:
            try:
                by_path = _load(dname + "/%s.json" % n)
                break
            except BoardError:
                pass
        assert by_path == d  # by path too


def test_oneplus_facts_and_unverified_markers():
    for n in ("oneplus-a", "oneplus-b", "oneplus-h"):
        d = load_board(n)
        assert (d["modem"]["uart"], d["modem"]["rx"], d["modem"]["tx"]) == (1, 35, 2)
        assert d["modem_power"]["pin"] == 27 and d["modem_power"]["active"] == 1
        assert d["modem_power"]["verified"] is False  # polarity to PWRKEY is unverified
        assert d["battery"]["verified"] is False  # A0 = GPIO36 is a convention, not in the sources
        assert d["led"]["pin"] == 4 and d["buzzer"]["pin"] == 25
        assert d["gnss"]["power"] == 12
        assert d["example"] is False
    ex = load_board("esp32-sim7600")
    assert ex["example"] is True
    for sec in ("modem", "modem_power", "coproc", "battery", "led"):
        assert ex[sec]["verified"] is False


def test_devtype_mapping_is_disjoint_and_matches_reference():
    seen = {}
    for n in NAMES:
        for t in load_board(n)["devtypes"]:
            assert t not in seen, "devType %d in %s and %s" % (t, seen.get(t), n)
            seen[t] = n
    assert board_for_devtype(dirs=DIRS, devtype=11) == "oneplus-a" and board_for_devtype(dirs=DIRS, devtype=16) == "oneplus-a"
    assert [board_for_devtype(dirs=DIRS, devtype=t) for t in (12, 13, 14)] == ["oneplus-b"] * 3
    assert board_for_devtype(dirs=DIRS, devtype=15) == "oneplus-h"
    assert board_for_devtype(dirs=DIRS, devtype=99) is None


def test_parse_devtype_from_ati():
    assert parse_devtype("OBD2USART V1.4") == 14
    assert parse_devtype(b"ATI\rOBD2USART V1.6\r\r>") == 16
    assert parse_devtype("OBD2USART V2.1") == 21
    assert parse_devtype("ELM327 v1.5") is None
    assert parse_devtype("OBD2USART") is None
    assert parse_devtype("OBD2USART Vx.y") is None


def test_apply_devtype_overrides():
    b = load_board("oneplus-b")
    d13 = apply_devtype(b, 13)
    assert (d13["modem"]["rx"], d13["modem"]["tx"]) == (32, 33)
    assert (d13["gnss"]["rx"], d13["gnss"]["tx"], d13["gnss"]["power2"]) == (32, 33, 15)
    assert d13["battery"]["source"] == "adc"  # devType > 12 reads the ADC
    assert d13["devtype"] == 13
    assert (b["modem"]["rx"], b["gnss"]["rx"]) == (35, 34)  # original untouched
    d12 = apply_devtype(b, 12)
    assert d12["modem"]["rx"] == 35 and d12["battery"]["source"] == "coproc"
    d14 = load_board("oneplus-b", devtype=14)
    assert d14["modem"]["rx"] == 35 and d14["gnss"]["rx"] == 34 and d14["gnss"]["power2"] is None
    a11 = apply_devtype(load_board("oneplus-a"), 11)
    assert a11["battery"]["source"] == "coproc" and a11["gnss"]["power2"] == 15


BAD = (  # (section, key, bad value or None to delete, text the error must contain)
    ("modem", "rx", None, "'rx'"),
    ("modem_power", "active", 2, "modem_power.active"),
    ("gnss", "source", "wifi", "gnss.source"),
    ("modem", "baud", "fast", "'baud' must be int"),
    ("modem", "uart", "1", "'uart' must be int"),  # null allowed, a string is not
    ("coproc", "reset", True, "'reset' must be int"),  # null allowed, a bool never passes as int
    ("battery", "scale_num", "45", "'scale_num' must be int or float"),
    (None, "by_devtype", [{"devtypes": [1], "set": {"nosuch.rx": 1}}], "nosuch.rx"),
    (None, "schema", 2, "schema"),
)


def test_validation_names_the_key():
    good = load_board("oneplus-b")
    for sec, key, val, text in BAD:
        d = _copy(good)
        t = d[sec] if sec else d
        if val is None:
            del t[key]
        else:
            t[key] = val
        e = raises(BoardError, validate_board, d)
        assert text in str(e), (text, str(e))
    assert "no-such-board" in str(raises(BoardError, load_board, "no-such-board"))


def _ref_device_id(mac):
    # independent formulation: the 40 bits above the lowest MAC byte, 5 at a time from
    # the least significant end, through the official 32-symbol alphabet
    alphabet = "0123456789AWCXEFGHYJKLMNZPQRSTUV"
    bits = 0
    for i in range(5, 0, -1):  # bytes 5..1, byte 5 most significant
        bits = (bits << 8) | mac[i]
    return "".join(alphabet[(bits >> (5 * k)) & 31] for k in range(8))


def test_device_id_from_mac():
    assert device_id_from_mac(b"\xff\x01\x00\x00\x00\x00") == "10000000"  # lowest byte dropped
    assert device_id_from_mac(b"\x00\xff\xff\xff\xff\xff") == "VVVVVVVV"
    # 11 -> 'B' -> 'W', 13 -> 'D' -> 'X', 18 -> 'I' -> 'Y', 24 -> 'O' -> 'Z'
    seed = 11 | (13 << 5) | (18 << 10) | (24 << 15) | (10 << 20) | (12 << 25) | (9 << 30) | (0 << 35)
    mac = (seed << 8).to_bytes(6, "little")
    assert device_id_from_mac(mac) == "WXYZAC90"
    for mac in (b"\x24\x0a\xc4\x12\x34\x56", b"\x30\xae\xa4\x98\x76\x54", b"\x01\x02\x03\x04\x05\x06"):
        got = device_id_from_mac(mac)
        assert got == _ref_device_id(mac), (mac, got)
        assert len(got) == 8
        for c in "BDIO":
            assert c not in got
    raises(ValueError, device_id_from_mac, b"\x00\x01")


def test_battery_scale():
    d = load_board("oneplus-b")
    assert battery_volts(4095, d) == 45
    assert abs(battery_volts(1092, d) - 12.0) < 0.01


# ---- ESP32 board against a fake `machine` -------------------------------------------------


class _Pin:
    OUT = 3

    def __init__(self, num, mode=None, value=None):
        self.num, self.level = num, value
        MADE.append(("Pin", num, mode, value))

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v


class _UART:
    def __init__(self, uid, **kw):
        MADE.append(("UART", uid, kw))

    def any(self):
        return 0


class _ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        MADE.append(("ADC", pin.num))

    def atten(self, a):
        pass

    def read_u16(self):
        return 1092 << 4


class _CalibratedADC(_ADC):
    """The ESP32 port's ADC: read_uv() is calibrated; read_u16() of this unit reads 5 % high."""

    def read_u16(self):
        return int(1092 * 1.05) << 4

    def read_uv(self):
        return 880000  # 0.88 V at the pin: 0.88 / 3.3 * 45 = 12.0 V


class _WDT:
    def __init__(self, timeout):
        self.timeout, self.feeds = timeout, 0

    def feed(self):
        self.feeds += 1


class FakeMachine:
    """Just enough of `machine` to check what the board builds (records into MADE)."""

    Pin, UART, ADC, WDT = _Pin, _UART, _ADC, _WDT

    def unique_id(self):
        return b"\x24\x0a\xc4\x12\x34\x56"

    def deepsleep(self, ms):
        MADE.append(("deepsleep", ms))

    def lightsleep(self, ms):
        MADE.append(("lightsleep", ms))

    def reset_cause(self):
        return 4

    def reset(self):
        MADE.append(("reset",))


MADE = []


def test_uart_stream_writes_everything_and_reads_zero_when_idle():
    class PartialUart:  # a UART whose write takes at most `step` bytes (None: none this time)
        def __init__(self, step):
            self.step = step
            self.out = bytearray()
            self.calls = 0
            self.rx = b""

        def write(self, data):
            self.calls += 1
            if self.calls % 3 == 0:
                return None
            k = min(self.step, len(data))
            self.out += bytes(data[:k])
            return k

        def any(self):
            return len(self.rx)

        def readinto(self, buf):
            n = len(self.rx)
            buf[:n] = self.rx
            self.rx = b""
            return n

    data = bytes(range(200))
    u = PartialUart(7)
    assert UartStream(u).write(data) == 200 and bytes(u.out) == data
    u = PartialUart(1000)
    s = UartStream(u)
    assert s.write(bytearray(data)) == 200 and bytes(u.out) == data and u.calls == 1  # all at once: one call
    buf = bytearray(8)
    assert s.readinto(buf) == 0  # nothing waiting
    u.rx = b"OK"
    assert s.readinto(buf) == 2 and buf[:2] == b"OK"


def test_esp32_board_builds_lazily():
    del MADE[:]
    m = FakeMachine()
    b = Board(load_board("oneplus-b"), machine=m)
    assert MADE == []  # nothing touched until asked
    s = b.modem_stream()
    assert isinstance(s, UartStream)
    assert b.modem_stream() is s  # cached
    kind, uid, kw = MADE[0]
    assert (kind, uid, kw["rx"], kw["tx"], kw["baudrate"]) == ("UART", 1, 35, 2, 115200)
    b.obd_stream()
    assert MADE[-1][1] == 2 and MADE[-1][2]["rx"] == 13 and MADE[-1][2]["tx"] == 14
    e = raises(BoardError, b.gps_stream)  # the ONE+ has no free hardware UART for GNSS
    assert "gnss.uart is null" in str(e)
    assert b.device_id() == device_id_from_mac(m.unique_id())
    assert abs(b.battery_voltage() - 12.0) < 0.01
    assert ("ADC", 36) in MADE
    w = b.wdt_start(30000)
    b.wdt_feed()
    assert w.timeout == 30000 and w.feeds == 1
    b.deep_sleep(5000)
    assert MADE[-1] == ("deepsleep", 5000)
    b.light_sleep(200)
    assert MADE[-1] == ("lightsleep", 200) and b.reset_cause() == 4
    b.reset()
    assert MADE[-1] == ("reset",)
    p = b.modem_power_pin()
    assert MADE[-1] == ("Pin", 27, _Pin.OUT, 0) and p is b.modem_power_pin()  # released, cached
    p.value(1)
    assert p.pin.level == 1
    for name in ("stream", "out_pin", "wlan", "buzzer", "light_sleep", "mac"):
        assert hasattr(b, name), name
    assert not hasattr(b, "no_such_method") and not hasattr(b, "_no_such_hook")
    import sys

    if sys.implementation.name == "micropython":  # the rare methods' modules were read for the calls only
        assert "board.rare" not in sys.modules and "board.esp32_more" not in sys.modules


def test_boot_only_board_code_leaves_no_module_behind():
    """load_board, make_board, apply_devtype, device_id and the ESP32's UART errors use board.desc
    for the call only (on the device its bytecode must not stay in the heap); the names that moved
    there (and board.host's DeepSleep) are still the board package's."""
    import sys

    import board
    from core.errors import forget

    forget("board.desc")
    b = board.make_board(load_board("oneplus-b"), argv=["--modem", "/dev/null"])
    assert isinstance(b, HostBoard) and b.paths["modem"] == "/dev/null"
    assert b.apply_devtype(13) == ["modem", "gnss"] and b.desc["modem"]["rx"] == 32
    assert b.apply_devtype(13) == []  # already applied
    dev = b.device_id()
    e = raises(BoardError, Board(load_board("oneplus-b"), machine=FakeMachine()).gps_stream)
    assert "gnss.uart is null" in str(e)
    d = _copy(load_board("esp32-sim7600"))
    d["modem"]["rx"] = None
    e = raises(BoardError, Board(d, machine=FakeMachine()).modem_stream)
    assert "modem.rx/modem.tx are not set" in str(e)
    assert "board.desc" not in sys.modules
    assert dev == device_id_from_mac(b.mac())
    assert board.SCHEMA == 1 and "/boards" in board.BOARD_DIRS and board.DEVICE_BOARD_FILE == "board.json"
    assert board.DeepSleep is DeepSleep
    from board import desc

    assert desc.parse_devtype("OBD2USART V1.4") == 14
    assert raises(AttributeError, lambda: board.no_such_name)


def test_esp32_battery_uses_the_calibrated_reading():
    class M(FakeMachine):
        ADC = _CalibratedADC

    b = Board(load_board("oneplus-b"), machine=M())
    v = b.battery_voltage()
    assert abs(v - 12.0) < 0.02, v  # not the unit's 12.6 V raw reading


def test_esp32_power_key_and_reset_polarity():
    m = FakeMachine()
    d = load_board("oneplus-b")
    b = Board(d, machine=m)
    pk = b.modem_power_pin()
    assert MADE[-1] == ("Pin", 27, 3, 0)  # created released (LOW for an active-high key)
    pk.value(1)
    assert pk.pin.level == 1
    rst = b.coproc_reset_pin()
    assert MADE[-1] == ("Pin", 15, 3, 1)  # reset is active LOW: created HIGH (running)
    rst.value(1)
    assert rst.pin.level == 0
    d2 = _copy(d)
    d2["modem_power"]["active"] = 0
    b2 = Board(d2, machine=FakeMachine())
    pk2 = b2.modem_power_pin()
    assert pk2.pin.level == 1
    pk2.on()
    assert pk2.pin.level == 0 and pk2.value() == 1


def test_battery_from_coproc_on_old_devtypes():
    d = load_board("oneplus-b")
    d["battery"]["source"] = "coproc"  # what devType <= 12 selects (mp_board checks the override)
    b = Board(d, machine=FakeMachine())
    assert b.battery_voltage() is None


# ---- host board -------------------------------------------------------------------------


class TickClock:
    def __init__(self):
        self.t = 100

    def ticks_ms(self):
        return self.t

    def diff(self, a, b):
        return a - b


def test_host_board_pins_record_levels_and_time():
    c = TickClock()
    hb = HostBoard(load_board("oneplus-b"), clock=c)
    pk = hb.modem_power_pin()
    c.t = 200
    pk.value(1)
    c.t = 400
    pk.value(0)
    fp = hb.fake_pin("modem_power")
    assert isinstance(fp, FakePin) and fp.num == 27
    assert fp.history == [(0, 100), (1, 200), (0, 400)]
    hb.gnss_power(True)
    assert hb.fake_pin("gnss", "power").value() == 1


def test_host_board_wdt_and_sleep():
    c = TickClock()
    hb = HostBoard(load_board("oneplus-h"), clock=c, mac=b"\x00\xff\xff\xff\xff\xff", adc_raw=4095)
    assert hb.device_id() == "VVVVVVVV"
    assert hb.battery_voltage() == 45
    w = hb.wdt_start(1000)
    c.t += 900
    hb.wdt_feed()
    assert w.feeds == 1 and not w.expired()
    c.t += 1001
    assert w.expired()
    e = raises(DeepSleep, hb.deep_sleep, 60000)
    assert e.ms == 60000 and hb.sleeps[-1] == ("deep", 60000)


def test_host_board_missing_path_is_a_clear_error():
    hb = HostBoard(load_board("oneplus-b"))
    e = raises(BoardError, hb.modem_stream)
    assert "--modem PATH" in str(e)
    e = raises(BoardError, HostBoard(load_board("oneplus-b"), modem="/nonexistent/tty").modem_stream)
    assert "/nonexistent/tty" in str(e)


def test_parse_host_args():
    o = parse_host_args(["--modem", "/dev/pts/3", "--obd=/dev/pts/4", "-v", "--gps", "/dev/pts/5", "x"])
    assert (o["modem"], o["obd"], o["gps"]) == ("/dev/pts/3", "/dev/pts/4", "/dev/pts/5")
    assert o["rest"] == ["-v", "x"]
    raises(BoardError, parse_host_args, ["--modem"])
