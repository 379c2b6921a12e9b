# AT engine behaviour, on CPython and under MicroPython -X heapsize=64K.
import asyncio

from at.engine import CME, ERROR, NO_PROMPT, REBOOTED, TIMEOUT, ATEngine, ATLog
from core.compat import sleep_ms
from fakemodem import ScriptedModem
from mptest import araises_at

OK = b"\r\nOK\r\n"


def _setup(echo=False):
    m = ScriptedModem(echo=echo)
    at = ATEngine(m.stream, poll_ms=1)
    at.start()
    return m, at


async def _later(ms, fn):
    await sleep_ms(ms)
    fn()


async def test_simple_reply_and_value():
    m, at = _setup()
    m.rules["AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n" + OK
    r = await at.cmd("AT+CSQ")
    assert r.final == "OK"
    assert r.lines == ["+CSQ: 20,99"]
    assert r.value("+CSQ:") == "20,99"
    assert bytes(m.stream.written) == b"AT+CSQ\r"
    at.stop()


async def test_echo_on_is_recognised_and_not_a_line():
    m, at = _setup(echo=True)
    m.rules["ATI"] = b"\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM7600E\r\n" + OK
    r = await at.cmd("ATI")
    assert r.echo and at.echo
    assert r.lines == ["Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600E"]
    m.echo = False
    m.rules["ATE0"] = OK
    r = await at.cmd("ATE0")
    m.rules["AT"] = OK
    r = await at.cmd("AT")
    assert not r.echo and not at.echo
    at.stop()


async def test_boot_urcs_inside_a_reply_go_to_handlers():
    m, at = _setup()
    seen = []
    at.on_urc("SMS DONE", lambda ln, b: seen.append(ln))
    at.on_urc("+CMQTTCONNLOST:", lambda ln, b: seen.append(ln))
    m.rules["AT+CREG?"] = b"\r\n+CREG: 0,1\r\n\r\nSMS DONE\r\n\r\n+CMQTTCONNLOST: 0,1\r\n\r\nPB DONE\r\n" + OK
    r = await at.cmd("AT+CREG?")
    assert r.lines == ["+CREG: 0,1"], r.lines
    assert seen == ["SMS DONE", "+CMQTTCONNLOST: 0,1"]
    at.stop()


async def test_urc_handler_outside_commands():
    m, at = _setup()
    seen = []
    at.on_urc("+CMQTTNONET", lambda ln, b: seen.append(ln))
    m.feed(b"\r\n+CMQTTNONET\r\n")
    for _ in range(100):
        if seen:
            break
        await sleep_ms(2)
    assert seen == ["+CMQTTNONET"]
    at.stop()


async def test_prompt_writes_exactly_n_bytes():
    m, at = _setup()
    topic = "fleet/é/data"  # 13 bytes, 12 characters
    n = len(topic.encode())
    m.prompts["AT+CMQTTTOPIC=0,%d" % n] = (n, OK)
    r = await at.cmd("AT+CMQTTTOPIC=0,%d" % n, data=topic.encode())
    assert r.final == "OK"
    assert m.data == [topic.encode()]
    assert bytes(m.stream.written) == ("AT+CMQTTTOPIC=0,%d\r" % n).encode() + topic.encode()
    at.stop()


async def test_prompt_with_echo_of_data_that_looks_like_ok():
    m, at = _setup(echo=True)
    payload = b"OK\r\nERROR\r\n+CMQTTPUB: 0,0\r\n"
    m.prompts["AT+CMQTTPAYLOAD=0,%d" % len(payload)] = (len(payload), OK)
    r = await at.cmd("AT+CMQTTPAYLOAD=0,%d" % len(payload), data=payload)
    assert r.final == "OK" and r.lines == [], r
    at.stop()


async def test_large_data_entry_in_chunks():
    m, at = _setup()
    cert = b"-----BEGIN CERTIFICATE-----\n" + b"A" * 2400 + b"\n-----END CERTIFICATE-----\n"
    cmd = 'AT+CCERTDOWN="cacert.pem",%d' % len(cert)
    m.prompts[cmd] = (len(cert), OK)
    await at.cmd(cmd, data=cert, timeout_ms=3000)
    assert m.data == [cert]
    at.stop()


async def test_prompt_refused_with_cmqtt_error():
    m, at = _setup()
    m.rules["AT+CMQTTTOPIC=0,10"] = b"\r\n+CMQTTTOPIC: 0,11\r\n\r\nERROR\r\n"
    e = await araises_at(ERROR, at.cmd("AT+CMQTTTOPIC=0,10", data=b"esp32/test"))
    assert e.code == 11 and e.meaning == "error 11", str(e)  # the engine knows no CMQTT table
    from modem.cmqtt import Cmqtt

    Cmqtt(at)  # a CMQTT client gives the engine its table for '+CMQTTxxx: <idx>,<err>' lines
    e = await araises_at(ERROR, at.cmd("AT+CMQTTTOPIC=0,10", data=b"esp32/test"))
    assert e.code == 11 and e.meaning == "no connection", str(e)
    assert "AT+CMQTTTOPIC=0,10" in str(e) and "no connection" in str(e)
    assert bytes(m.stream.written) == b"AT+CMQTTTOPIC=0,10\r" * 2  # the data was never written
    at.stop()


async def test_ok_before_the_prompt_is_an_error_and_data_is_not_written():
    m, at = _setup()
    m.rules["AT+CMQTTPAYLOAD=0,5"] = b"\r\nOK\r\n"  # noise/late OK, no '>'
    e = await araises_at(NO_PROMPT, at.cmd("AT+CMQTTPAYLOAD=0,5", data=b"hello"))
    assert "not sent" in str(e) and "AT+CMQTTPAYLOAD=0,5" in str(e)
    assert b"hello" not in bytes(m.stream.written)
    m.rules["AT+CMEE?"] = b"\r\n+CMEE: 2\r\n" + OK
    m.rules["AT"] = OK
    assert (await at.cmd("AT")).final == "OK"
    assert m.cmds[-2:] == ["AT+CMEE?", "AT"]  # re-synchronised first
    at.stop()


async def test_length_prefixed_body_with_crlf():
    m, at = _setup()
    got = []
    at.on_urc("+CMQTTRXPAYLOAD:", lambda ln, b: got.append(b), body_len=lambda ln: int(ln.split(",")[1]))
    at.on_urc("+CMQTTRXEND:", lambda ln, b: got.append(ln))
    body = b'{\r\n  "message": "OK"\r\nERROR\r\n>\r\n}'
    stream = b"\r\n+CMQTTRXPAYLOAD: 0,%d\r\n" % len(body) + body + b"\r\n+CMQTTRXEND: 0\r\n"
    for i in range(len(stream)):  # one byte at a time: split everywhere
        m.feed(stream[i : i + 1])
        await sleep_ms(0)
    for _ in range(200):
        if len(got) == 2:
            break
        await sleep_ms(2)
    assert got == [body, "+CMQTTRXEND: 0"], got
    at.stop()


async def test_body_inside_a_reply():
    m, at = _setup()
    got = []
    at.on_urc("+CMQTTRXPAYLOAD:", lambda ln, b: got.append(b), body_len=lambda ln: int(ln.split(",")[1]))
    m.rules["AT+CSQ"] = b"\r\n+CSQ: 9,99\r\n\r\n+CMQTTRXPAYLOAD: 0,4\r\nOK\r\n\r\n" + OK
    r = await at.cmd("AT+CSQ")
    assert r.lines == ["+CSQ: 9,99"] and got == [b"OK\r\n"], (r, got)
    at.stop()


async def test_body_length_beyond_the_buffer_does_not_stop_the_reader():
    """'+CMQTTRXTOPIC: 0,1717' (a length garbled by noise: no body is that long) must not end the
    reader task; the handler hears the body is lost and the next command works (make fuzz found it)."""
    m, at = _setup()
    got = []
    at.on_urc("+CMQTTRXTOPIC:", lambda ln, b: got.append((ln, b)), body_len=lambda ln: int(ln.split(",")[1]))
    m.feed(b"\r\n+CMQTTRXTOPIC: 0,%d\r\n" % (at.framer.body_max + 181))
    m.rules["AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n" + OK
    r = await at.cmd("AT+CSQ")
    assert r.value("+CSQ:") == "20,99" and got == [("+CMQTTRXTOPIC: 0,%d" % (at.framer.body_max + 181), None)]
    assert at.stats["errors"] == 1 and not at._task.done()
    at.stop()


async def test_a_failing_urc_handler_does_not_stop_the_reader():
    m, at = _setup()
    log = []
    at.log = ATLog(log.append)

    def bad(ln, b):
        raise KeyError("handler bug")

    at.on_urc("+CMQTTPING:", bad)
    m.feed(b"\r\n+CMQTTPING: 0,17\r\n")
    m.rules["AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n" + OK
    assert (await at.cmd("AT+CSQ")).value("+CSQ:") == "20,99"
    assert at.stats["errors"] == 1 and not at._task.done()
    assert any("URC handler" in t and "+CMQTTPING: 0,17" in t for t in log), log
    at.stop()


async def test_deferred_result_after_ok():
    m, at = _setup()
    c = 'AT+CMQTTCONNECT=0,"tcp://broker:1883",60,1'
    m.rules[c] = OK
    t = asyncio.create_task(_later(30, lambda: m.feed(b"\r\n+CMQTTCONNECT: 0,0\r\n")))
    r = await at.cmd(c, result="+CMQTTCONNECT: 0,", result_timeout_ms=2000)
    assert r.final == "OK" and r.result == "0"
    await t
    at.stop()


async def test_deferred_result_before_ok():
    m, at = _setup()
    m.rules["AT+CMQTTSTART"] = b"\r\n+CMQTTSTART: 0\r\n" + OK
    r = await at.cmd("AT+CMQTTSTART", result="+CMQTTSTART:", result_timeout_ms=500)
    assert r.result == "0" and r.lines == []
    at.stop()


async def test_deferred_result_error_form():
    m, at = _setup()
    from modem.cmqtt import Cmqtt

    Cmqtt(at)  # installs the CMQTT meanings on the engine
    m.rules["AT+CMQTTSTART"] = b"\r\n+CMQTTSTART: 23\r\n\r\nERROR\r\n"
    e = await araises_at(ERROR, at.cmd("AT+CMQTTSTART", result="+CMQTTSTART:"))
    assert e.code == 23 and e.meaning == "network is opened"
    m.rules['AT+CMQTTCONNECT=0,"tcp://x:1",60,1'] = b"\r\n+CMQTTCONNECT: 0,14\r\n\r\nERROR\r\n"
    e = await araises_at(ERROR, at.cmd('AT+CMQTTCONNECT=0,"tcp://x:1",60,1', result="+CMQTTCONNECT: 0,"))
    assert e.code == 14 and e.meaning == "client is busy"
    at.stop()


async def test_result_timeout_then_next_command_works():
    m, at = _setup()
    m.rules["AT+NETOPEN"] = OK
    e = await araises_at(TIMEOUT, at.cmd("AT+NETOPEN", result="+NETOPEN:", result_timeout_ms=50))
    assert "+NETOPEN:" in str(e)
    m.rules["AT"] = OK
    assert (await at.cmd("AT")).final == "OK"
    at.stop()


async def test_cme_error_numeric_and_text():
    m, at = _setup()
    m.rules["AT+CPIN?"] = b"\r\n+CME ERROR: 10\r\n"
    e = await araises_at(CME, at.cmd("AT+CPIN?"))
    assert e.code == 10 and e.meaning == "SIM not inserted", str(e)
    m.rules["AT+CPIN?"] = b"\r\n+CME ERROR: SIM busy\r\n"
    e = await araises_at(CME, at.cmd("AT+CPIN?"))
    assert e.code == "SIM busy" and e.meaning == "SIM busy"
    at.stop()


async def test_timeout_and_late_reply_does_not_leak_into_next_command():
    m, at = _setup()
    e = await araises_at(TIMEOUT, at.cmd("AT+COPS?", timeout_ms=40))
    assert "AT+COPS?" in str(e) and "40 ms" in str(e)
    m.rules["AT+CMEE?"] = b"\r\n+COPS: 0,0,\"late\",7\r\n\r\nOK\r\n" + b"\r\n+CMEE: 2\r\n" + OK  # late reply first
    m.rules["AT+CSQ"] = b"\r\n+CSQ: 31,99\r\n" + OK
    r = await at.cmd("AT+CSQ")
    assert r.lines == ["+CSQ: 31,99"], r
    at.stop()


async def test_garbage_and_overlong_lines_never_wedge():
    m, at = _setup()
    m.feed(b"\xff\xfe\x00garbage\r\n" + b"x" * 3000 + b"\r\n\r\r\n\n")
    m.rules["AT+CSQ"] = b"\r\n\xff+CSQ: 5,99\r\n" + OK
    r = await at.cmd("AT+CSQ")
    assert r.final == "OK"
    assert at.framer.overflows >= 1
    m.rules["AT"] = b"\r\nOK"  # partial line: the rest comes later
    t = asyncio.create_task(_later(20, lambda: m.feed(b"\r\n")))
    assert (await at.cmd("AT")).final == "OK"
    await t
    at.stop()


async def test_modem_reboot_mid_command():
    m, at = _setup()
    rebooted = []
    at.on_urc("RDY", lambda ln, b: rebooted.append(ln))
    m.rules["AT+CMQTTSTART"] = b"\r\nRDY\r\n\r\n+CPIN: READY\r\n"
    e = await araises_at(REBOOTED, at.cmd("AT+CMQTTSTART", result="+CMQTTSTART:", timeout_ms=2000))
    assert "rebooted" in str(e)
    assert rebooted == ["RDY"] and at.stats["reboots"] == 1
    m.rules["AT"] = OK
    assert (await at.cmd("AT")).final == "OK"
    at.stop()


async def test_reboot_while_waiting_for_the_prompt_ends_the_data_entry_at_once():
    """RDY instead of '>': the data entry fails (ATError REBOOTED) as soon as RDY arrives (the
    wait for the prompt ends on the final result too), not after the prompt timeout, and the
    data is never written."""
    from core.compat import ticks_diff, ticks_ms

    m, at = _setup()
    m.rules["AT+CMQTTPAYLOAD=0,5"] = b"\r\nRDY\r\n"
    t0 = ticks_ms()
    e = await araises_at(REBOOTED, at.cmd("AT+CMQTTPAYLOAD=0,5", data=b"hello", timeout_ms=3000))
    assert ticks_diff(ticks_ms(), t0) < 1500, ticks_diff(ticks_ms(), t0)
    assert "rebooted" in str(e) and b"hello" not in bytes(m.stream.written)
    m.rules["AT"] = OK
    assert (await at.cmd("AT")).final == "OK"
    at.stop()


async def test_reboot_while_waiting_for_deferred_result():
    m, at = _setup()
    m.rules['AT+CMQTTCONNECT=0,"tcp://h:1883",60,1'] = OK
    t = asyncio.create_task(_later(20, lambda: m.feed(b"\r\nRDY\r\n")))
    await araises_at(REBOOTED, at.cmd('AT+CMQTTCONNECT=0,"tcp://h:1883",60,1', result="+CMQTTCONNECT: 0,", result_timeout_ms=3000))
    await t
    at.stop()


async def test_one_command_at_a_time():
    m, at = _setup()
    m.rules["AT+A"] = b""
    m.rules["AT+B"] = b"\r\n+B: 2\r\n" + OK
    t = asyncio.create_task(at.cmd("AT+A", timeout_ms=2000))
    await sleep_ms(10)
    t2 = asyncio.create_task(at.cmd("AT+B", timeout_ms=2000))
    await sleep_ms(30)
    assert m.cmds == ["AT+A"]  # B waits for A's final result
    m.feed(b"\r\n+A: 1\r\n" + OK)
    ra = await t
    rb = await t2
    assert ra.lines == ["+A: 1"] and rb.lines == ["+B: 2"]
    at.stop()


async def test_wait_urc_and_caller_terminator():
    m, at = _setup()
    t = asyncio.create_task(_later(10, lambda: m.feed(b"\r\nRDY\r\n\r\nPB DONE\r\n")))
    line = await at.wait_urc("PB DONE", 2000)
    assert line == "PB DONE"
    await t
    m.rules["AT+CPOF"] = b"\r\nNORMAL POWER DOWN\r\n"
    r = await at.cmd("AT+CPOF", terminators=("NORMAL POWER DOWN",))
    assert r.final == "NORMAL POWER DOWN"
    await araises_at(TIMEOUT, at.wait_urc("NEVER", 20))
    at.stop()


async def test_atlog_writes_the_seed_format():
    out = []
    m = ScriptedModem()
    at = ATEngine(m.stream, poll_ms=1, log=ATLog(out.append))
    at.start()
    m.rules["AT"] = OK
    await at.cmd("AT")
    text = "".join(out)
    assert "=== SENT@" in text and "\nAT\r\n==================\n" in text
    assert "=== RECV@" in text and "OK" in text
    at.stop()


async def test_a_cancelled_caller_does_not_break_a_data_entry():
    m, at = _setup()
    m.prompts["AT+CMQTTPAYLOAD=0,5"] = (5, OK)
    m.rules["AT+CSQ"] = b"\r\n+CSQ: 7,99\r\n" + OK
    t = asyncio.create_task(at.cmd("AT+CMQTTPAYLOAD=0,5", data=b"hello", timeout_ms=2000))
    await sleep_ms(0)  # the command line is on its way; the caller gives up (standby, shutdown)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        pass
    r = await at.cmd("AT+CSQ")  # the next command gets its own reply, not the payload's OK
    assert r.lines == ["+CSQ: 7,99"], r
    assert m.data == [b"hello"]  # the data entry was completed: the module is not left waiting
    assert m.cmds == ["AT+CMQTTPAYLOAD=0,5", "AT+CSQ"]
    assert not at._waiters
    at.stop()


def test_at_log_file_is_size_capped_with_one_old_file():
    import os

    from at.engine import RotatingFile

    path = "/tmp/atlog-%d.txt" % (int.from_bytes(os.urandom(3), "little"))
    w = RotatingFile(path, 1024)
    log = ATLog(w)
    for _ in range(60):
        log.block("SENT", b"AT+CSQ\r")
    w.close()
    cur = os.stat(path)[6]
    old = os.stat(path + ".1")[6]
    assert 0 < cur <= 1024 and 900 < old <= 1024, (cur, old)
    with open(path) as f:
        assert f.read().startswith("=== SENT@")
    os.remove(path)
    os.remove(path + ".1")


def test_an_error_without_a_message_names_its_kind():
    import sys

    from at.engine import CMS, ATError

    had = "at.fail" in sys.modules
    # the name each kind's class had before the kinds became data; read from at.fail, which is dropped again
    assert str(ATError("AT+X", 4, "operation not supported", kind=CME)) == "AT+X: CMEError (error 4: operation not supported)"
    assert str(ATError("AT+X", kind=ERROR)) == "AT+X: ATCommandError"
    names = [str(ATError("AT", kind=k)) for k in (0, TIMEOUT, CMS, NO_PROMPT, REBOOTED)]
    assert names == ["AT: ATError", "AT: ATTimeout", "AT: CMSError", "AT: ATNoPrompt", "AT: ModemRebooted"], names
    assert str(ATError("AT", msg="no final result within 5 ms", kind=TIMEOUT)) == "AT: no final result within 5 ms"
    assert ("at.fail" in sys.modules) == had
