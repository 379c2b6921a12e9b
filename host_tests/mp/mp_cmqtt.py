# mp-heap: 192K  (AT engine + CMQTT client + strict fake modem + cases resident at once on the 64-bit port)
# modem.cmqtt on both runtimes against cmqttfake.FakeCmqtt (strict: 14 when busy, 11 when not
# connected): errors, limits, connect sequence and orderings, publish and URC-driven state.
import asyncio

from cmqttfake import setup, until, up
from core.compat import sleep_ms
from modem import cmqtt as C
from modem import codes
from mptest import Skip, araises, raises
from net.publisher import NetError


# ------------------------------------------------------------------------------- error classes


def test_every_code_has_a_named_error():
    names = set()
    for code in range(1, len(codes.CMQTT_ERRORS)):
        e = C.CmqttError("CMQTTPUB", code)
        assert type(e) is C.CmqttError and isinstance(e, NetError)
        assert e.code == code and e.meaning == codes.CMQTT_ERRORS[code]
        assert codes.CMQTT_ERRORS[code] in str(e) and e.name in str(e)
        assert e.name == codes.cmqtt_info(code)[0]
        names.add(e.name)
    assert len(names) == len(codes.CMQTT_ERRORS) - 1  # a distinct name per code
    assert C.CmqttError("X", 3).name == "SockConnectFail"
    assert C.CmqttError("X", 11).name == "NoConnection"
    assert C.CmqttError("X", 14).name == "ClientBusy"
    assert C.CmqttError("X", 32).name == "HandshakeFail"
    e = C.CmqttError("CMQTTSTART", 23)
    assert "CMQTTSTART" in str(e) and "REL/STOP" in str(e) and e.hint
    assert C.CmqttError("X", 5).hint is None  # no hint known for this one


def test_error_families():
    assert [c for c in range(40) if C.is_refused(c)] == [27, 28, 29, 30, 31]
    assert [c for c in range(40) if C.is_tls(c)] == [32, 33, 34]
    assert [c for c in range(40) if C.is_peer_refusal(c)] == [15] + list(range(27, 35))
    assert not C.is_refused(None) and not C.is_tls(None) and not C.is_peer_refusal(None)


def test_error_texts_are_not_resident():
    # the tables are read when an error happens and dropped again
    import sys

    C.CmqttError("X", 32)
    codes.cme_meaning(10)
    assert "modem.code_texts" not in sys.modules and "at.cme" not in sys.modules
    assert codes.cme_meaning(10) == "SIM not inserted" and codes.cme_meaning(9999) == "CME error 9999"
    assert codes.reg_state(5) == "registered, roaming" and codes.connlost_cause(1) == "socket closed passively"


def test_error_texts_come_from_the_table_file_and_the_frozen_fallback_agrees():
    # modem/code_table.py is never imported for a word: its lines are read from its file beside modem.codes
    # (.py or .mpy: core/rows.py). A frozen image has no such file: the table is imported for the lookup and
    # dropped again. Both give the same words, for every code and for codes that have none.
    import sys

    def all_words():
        return ([codes.cmqtt_info(c) for c in range(-1, 38)] + [codes.connlost_cause(c) for c in range(5)]
                + [codes.reg_state(s) for s in range(10)] + [codes.cmqtt_hint(c) for c in (3, 5, 11, 99)])

    read = all_words()
    assert "modem.code_table" not in sys.modules and "core.rows" not in sys.modules
    assert read[4] == ("SockConnectFail", "sock connect fail", read[4][2]) and "tcp://" in read[4][2]
    assert read[0][0] == read[38][0] == "UnknownError" and read[36][1] == "disconnect from server failed"  # -1, 37: none
    assert codes.connlost_cause(3) == "network closed" and codes.connlost_cause(4) == "unknown cause 4"
    fix = codes.FIRMWARE_NO_SSL_FIX  # (two lines of the table, one text)
    assert fix.startswith("this SIM7600 firmware cannot do MQTT over SSL") and "port with SIMCom's tool" in fix, fix
    read.append(fix)
    here = codes.__file__
    codes.__file__ = "/nonexistent/modem/codes.py"
    try:
        assert all_words() + [codes.FIRMWARE_NO_SSL_FIX] == read
    finally:
        codes.__file__ = here
    assert "modem.code_table" not in sys.modules
    from modem import code_table

    try:  # every line fits the 200-byte window core/rows.py reads
        assert all(len(ln.encode()) < 190 for c in code_table.TABLE for ln in c.split("\n"))
        assert all(c[:1] == "\n" and c[-1:] == "\n" for c in code_table.TABLE)  # each line after a newline
    finally:
        del sys.modules["modem.code_table"]


def test_failure_messages_are_read_from_the_table_when_one_happens():
    # the bring-up's and the connect's rare failures (modem/code_table.py's M lines, code_texts.msg): formatted
    # with the arguments their raise gives, the template alone for a log call that formats, a number without
    # a line as the number and the arguments (the failure still raised, not an error about its words), and
    # the same words from the imported table where there is no file (a frozen image)
    import sys

    from core.errors import lookup

    def msg(*a):
        return lookup(codes.TEXTS, "msg", *a)

    assert msg(0, (30000, "timeout")) == "modem did not answer AT within 30000 ms (last: timeout)"
    assert msg(4) == "the SIM asks for a PIN and config cellular.sim_pin is empty"
    assert msg(6, ("incorrect password",)) == "SIM PIN refused: incorrect password (check cellular.sim_pin)"
    assert msg(8, (23,)) == "client id must be 1..23 bytes without '\"'"
    assert msg(10, ("tcp://x:1",)) == "server address 'tcp://x:1' must be 9..256 characters"
    t = msg(9)
    assert t.startswith('AT+CMQTTCFG="checkUTF8" refused (%s)') and t % ("12",) != t, t
    assert msg(11) % ("x",) == "modem does not answer (x): pressing its power key"
    assert "modem.code_texts" not in sys.modules and "modem.code_table" not in sys.modules
    assert msg(99, (1,)) == "M99 (1,)"  # no such line
    here = codes.__file__
    codes.__file__ = "/nonexistent/modem/codes.py"  # (the import fallback still finds the lines)
    try:
        assert msg(2, (20000, "busy")) == "SIM not ready after 20000 ms (state busy)"
    finally:
        codes.__file__ = here
        sys.modules.pop("modem.code_table", None)


def _kind(kind, fn, *a):
    e = raises(C.CmqttArgError, fn, *a)
    assert isinstance(e, ValueError) and e.kind == kind, (kind, e.kind, str(e))
    return e


async def _akind(kind, aw):
    e = await araises(C.CmqttArgError, aw)
    assert e.kind == kind, (kind, e.kind, str(e))
    return e


def test_limits_checked_before_sending():
    assert C.check_topic("a" * 1024) == b"a" * 1024
    e = _kind("topic", C.check_topic, "a" * 1025)
    assert "1025" in str(e) and "1024" in str(e)
    _kind("topic", C.check_topic, "")
    _kind("utf8", C.check_topic, b"t/\xff")
    assert len(C.check_payload(b"\x00" * 10240)) == 10240
    e = _kind("payload", C.check_payload, b"x" * 10241)
    assert "10241" in str(e)
    _kind("utf8", C.check_payload, b"\xc3", True)
    assert C.check_payload(b"\xc3") == b"\xc3"  # binary is fine with checkUTF8 off
    assert C.check_topic("t/\u00e9") == "t/\u00e9".encode()


async def test_limit_errors_send_nothing():
    m, at, mq = setup()
    await up(m, mq)
    n = len(m.cmds)
    await _akind("payload", mq.publish("t", b"x" * 10241))
    await _akind("topic", mq.publish("t" * 1025, b"x"))
    await _akind("utf8", mq.publish(b"\xfe\xff", b"x"))
    await _akind("topic", mq.subscribe("s" * 2000))
    await _akind("arg", mq.publish("t", b"x", 3))
    assert len(m.cmds) == n
    at.stop()


# ------------------------------------------------------------------------------- connect


async def test_start_acquire_connect_sequence():
    m, at, mq = setup()
    await up(m, mq, tls=True)
    assert m.cmds == [
        "AT+CMQTTSTART",
        'AT+CMQTTACCQ=0,"dev1",1,4',
        'AT+CMQTTCFG="checkUTF8",0,0',
        "AT+CMQTTSSLCFG=0,0",
        'AT+CMQTTCONNECT=0,"tcp://broker.local:1883",60,1',
    ], m.cmds
    assert mq.connected()
    assert m.busy_hits == 0
    at.stop()


async def test_result_before_ok_is_accepted():
    m, at, mq = setup()
    m.result_first = True
    await up(m, mq)
    await mq.publish("a/b", b"hello", 1)
    assert m.pubs == [(b"a/b", b"hello", 1)]
    assert mq.connected()
    at.stop()


async def test_stale_service_23_is_cleaned_up():
    m, at, mq = setup()
    m.started = True
    m.acquired = True  # left over from before an MCU reset
    await mq.start()
    assert m.cmds[0] == "AT+CMQTTSTART"
    assert m.cmds[1].startswith("AT+CMQTTDISC=0,")
    assert m.cmds[2:] == ["AT+CMQTTREL=0", "AT+CMQTTSTOP", "AT+CMQTTSTART"], m.cmds
    assert mq.started and m.started and not m.acquired
    at.stop()


async def test_accq_client_used_releases_then_acquires():
    m, at, mq = setup()
    await mq.start()
    m.acquired = True
    await mq.acquire("dev1")
    assert "AT+CMQTTREL=0" in m.cmds
    assert m.cmds.count('AT+CMQTTACCQ=0,"dev1",0,4') == 2
    at.stop()


async def test_publish_right_after_connect_ok_waits_for_the_result():
    # the seed's first failure: CONNECT answered OK, the app published at once and got 0,11
    m, at, mq = setup()
    m.hold.add("CMQTTCONNECT")
    await mq.start()
    await mq.acquire("dev1")
    t_conn = asyncio.create_task(mq.connect("broker.local", 1883))
    assert await until(lambda: "CMQTTCONNECT" in m.owed)
    t_pub = asyncio.create_task(mq.publish("t", b"p", 1))
    for _ in range(30):
        await sleep_ms(1)
    assert not mq.connected()
    assert not any(c.startswith("AT+CMQTTTOPIC") for c in m.cmds), m.cmds
    m.hold.discard("CMQTTCONNECT")
    m.release("CMQTTCONNECT", 0)
    await t_conn
    assert mq.connected()
    await t_pub
    assert m.pubs == [(b"t", b"p", 1)]
    assert m.nocon_hits == 0 and m.busy_hits == 0
    at.stop()


async def test_connect_error_result_raises_named_error():
    m, at, mq = setup()
    m.connect_code = 31
    await mq.start()
    await mq.acquire("dev1")
    e = await araises(C.CmqttError, mq.connect("broker.local", 8883, ssl_ctx=0))
    assert e.code == 31 and "not authorized" in str(e) and C.is_refused(e.code)
    assert not mq.connected()
    m.connect_code = 32
    e = await araises(C.CmqttError, mq.connect("broker.local", 8883, ssl_ctx=0))
    assert e.code == 32 and e.name == "HandshakeFail" and C.is_tls(e.code)
    assert "handshake" in str(e) and e.hint
    at.stop()


async def test_a_rare_operation_leaves_no_bytecode_resident():
    # modem.errors.hold keeps modem.cmqtt_rare imported while an operation runs; a finished
    # coroutine keeps its locals, so none may hold the module (it kept ~3.7 KB alive before)
    import sys

    if sys.implementation.name != "micropython":
        raise Skip("heap figures are MicroPython's")
    import gc

    m, at, mq = setup()
    await up(m, mq)  # modem.cmqtt_rare's names are interned now (they stay for good)
    await sleep_ms(0)  # the slot that awaited up() now holds something else
    gc.collect()
    a0 = gc.mem_alloc()
    await mq.subscribe("t/x")  # the awaiting slot keeps the finished coroutine chain
    gc.collect()
    grew = gc.mem_alloc() - a0
    assert "modem.cmqtt_rare" not in sys.modules
    assert grew < 1500, grew  # modem.cmqtt_rare alone is ~3.7 KB of bytecode on 32-bit
    at.stop()


async def test_construction_and_setters_import_no_rare_module():
    # the publisher is built on the boot peak: Cmqtt() and on_message/on_state are resident (a
    # stand-in with no attributes in sys.modules fails the test if either imports cmqtt_rare)
    import sys

    class Trap:
        pass

    states = []
    seen = states.append
    saved = sys.modules.pop("modem.cmqtt_rare", None)
    sys.modules["modem.cmqtt_rare"] = Trap()
    try:
        m, at, mq = setup(cmd_timeout_ms=700)
        mq.on_message(print)
        mq.on_state(lambda up, why: seen(up))
    finally:
        del sys.modules["modem.cmqtt_rare"]
        if saved is not None:
            sys.modules["modem.cmqtt_rare"] = saved
    assert mq.idx == 0 and mq.cmd_timeout_ms == 700 and not mq.connected() and not mq.started
    assert mq._msg_cb is print
    assert at.meaning is C._at_meaning  # CMQTT's words for a failed command
    await up(m, mq)  # the URC handlers are on the engine: the session comes up
    assert mq.connected() and states == [True], states  # the state callback set above is called
    at.stop()
