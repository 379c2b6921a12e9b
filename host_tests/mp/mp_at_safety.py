# The AT engine's robustness and secrecy (issue 11 §4, §5), on CPython and under MicroPython:
# a reader that survives anything, an AT log that turns itself off on a full flash, and no
# credential, key or incoming payload in the AT log or in any error text.

from at.engine import ERROR, ATEngine, ATLog, RotatingFile
from core.compat import sleep_ms
from fakemodem import ScriptedModem
from mptest import araises, araises_at

OK = b"\r\nOK\r\n"


def _setup(echo=False, log=None):
    m = ScriptedModem(echo=echo)
    at = ATEngine(m.stream, poll_ms=1, log=log)
    at.start()
    m.rules["AT+CSQ"] = b"\r\n+CSQ: 20,99\r\n" + OK
    return m, at


class FullFlash:
    """A log target on a flash that fills up: OSError(28, ENOSPC) after `room` characters."""

    def __init__(self, room):
        self.room = room
        self.calls = 0
        self.closed = False

    def __call__(self, text):
        self.calls += 1
        if len(text) > self.room:
            raise OSError(28)
        self.room -= len(text)

    def close(self):
        self.closed = True


def _alive(at):
    # the reader task runs (it survives every exception; a command restarts one that ended)
    return at._task is not None and not at._task.done()


async def test_at_log_on_a_full_flash_turns_off_and_commands_keep_working():
    w = FullFlash(300)
    m, at = _setup(log=ATLog(w))
    said = []
    at.warn = said.append
    for _ in range(8):
        r = await at.cmd("AT+CSQ")
        assert r.value("+CSQ:") == "20,99"
    m.feed(b"\r\n+CMQTTPING: 0,17\r\n")  # a URC after the log went off: no write attempted
    await sleep_ms(10)
    assert at.log is None and isinstance(at.log_error, OSError) and at.log_error.args[0] == 28
    assert len(said) == 1 and "AT log off" in said[0], said  # said once
    assert w.closed and _alive(at)
    n = w.calls
    assert (await at.cmd("AT+CSQ")).final == "OK"
    assert w.calls == n  # off for good
    at.stop()


async def test_reader_survives_an_exception_in_the_framer():
    m, at = _setup()
    real = at.framer.feed
    hits = []

    def bad(buf, n):
        if not hits:
            hits.append(n)
            raise MemoryError("test")
        return real(buf, n)

    at.framer.feed = bad
    m.feed(b"\r\n+CMQTTPING: 0,17\r\n")
    await sleep_ms(10)
    assert hits and _alive(at) and at.stats["reader_errors"] == 1
    assert isinstance(at.reader_error, MemoryError)
    r = await at.cmd("AT+CSQ")
    assert r.value("+CSQ:") == "20,99"
    at.stop()


async def test_a_dead_reader_is_restarted_by_the_next_command():
    m, at = _setup()
    at._task.cancel()  # whatever ended it
    for _ in range(5):
        await sleep_ms(1)
    assert not _alive(at)
    r = await at.cmd("AT+CSQ", timeout_ms=1000)
    assert r.value("+CSQ:") == "20,99" and _alive(at) and at.stats["restarts"] == 1
    # it re-synchronised first (a reply may have been lost with the old reader)
    assert m.cmds == ["AT+CMEE?", "AT+CSQ"], m.cmds
    at.stop()


def test_rotating_file_counts_bytes_not_characters():
    import os

    path = "/tmp/atlog-mb-%d.txt" % (int.from_bytes(os.urandom(3), "little"))
    w = RotatingFile(path, 1000)
    log = ATLog(w)
    for _ in range(40):
        log.note("\u00e9\u00e9\u20ac\u20ac" * 10)  # 100 bytes of UTF-8, 40 characters
    w.close()
    for p in (path, path + ".1"):
        assert 0 < os.stat(p)[6] <= 1000, (p, os.stat(p)[6])
        os.remove(p)


SECRETS = ("s3cr3t-Pass", "mqtt-user-x", "apn-Pa55", "apn-user-y", "4711", "PRIVATE-KEY-BYTES", "cmd-payload-secret")


async def _secret_session(echo):
    out = []
    m, at = _setup(echo=echo, log=ATLog(out.append))
    errors = []
    m.rules['AT+CMQTTCONNECT=0,"tcp://b:1883",60,1,"mqtt-user-x","s3cr3t-Pass"'] = OK + b"\r\n+CMQTTCONNECT: 0,0\r\n"
    await at.cmd('AT+CMQTTCONNECT=0,"tcp://b:1883",60,1,"mqtt-user-x","s3cr3t-Pass"', result="+CMQTTCONNECT: 0,")
    m.rules['AT+CGAUTH=1,1,"apn-Pa55","apn-user-y"'] = b"\r\nERROR\r\n"
    errors.append(await araises_at(ERROR, at.cmd('AT+CGAUTH=1,1,"apn-Pa55","apn-user-y"')))
    m.rules['AT+CPIN="4711"'] = b"\r\n+CME ERROR: 16\r\n"
    errors.append(await araises(Exception, at.cmd('AT+CPIN="4711"')))
    key = b"-----BEGIN PRIVATE KEY-----\nPRIVATE-KEY-BYTES\n-----END PRIVATE KEY-----\n"
    m.prompts['AT+CCERTDOWN="k.pem",%d' % len(key)] = (len(key), OK)
    await at.cmd('AT+CCERTDOWN="k.pem",%d' % len(key), data=key)
    got = []
    at.on_urc("+CMQTTRXPAYLOAD:", lambda ln, b: got.append(b), body_len=lambda ln: int(ln.split(",")[1]), secret=True)
    m.feed(b"\r\n+CMQTTRXPAYLOAD: 0,18\r\ncmd-payload-secret\r\n")
    m.rules['AT+CMQTTCONNECT=0,"tcp://b:1883",60,1,"mqtt-user-x","s3cr3t-Pass"'] = b"\r\n+CMQTTCONNECT: 0,30\r\n\r\nERROR\r\n"
    errors.append(await araises_at(ERROR, at.cmd('AT+CMQTTCONNECT=0,"tcp://b:1883",60,1,"mqtt-user-x","s3cr3t-Pass"', result="+CMQTTCONNECT: 0,")))
    assert got == [b"cmd-payload-secret"]  # the handler gets the real bytes
    at.stop()
    return "".join(out), errors


async def test_no_secret_in_the_at_log_or_any_error():
    for echo in (False, True):
        text, errors = await _secret_session(echo)
        for s in SECRETS:
            assert s not in text, (echo, s, text)
            for e in errors:
                assert s not in str(e) and s not in e.cmd and s not in repr(e.args), (s, str(e))
        # what is logged still says what happened
        assert 'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1,<redacted>' in text
        assert 'AT+CPIN=<redacted>' in text and "AT+CGAUTH=1,1,<redacted>" in text
        assert "+CMQTTRXPAYLOAD: 0,18\r\n******************" in text
        assert "bytes redacted>" in text and 'AT+CCERTDOWN="k.pem"' in text
        assert errors[1].code == 16 and "AT+CPIN=<redacted>" in str(errors[1])


async def test_only_a_command_that_can_hold_credentials_loads_the_redaction():
    # every command with credentials quotes them (at/redact.py): an error of AT+CMQTTREL=0 (a recovery's) or
    # of AT+CPIN? (SIM busy after a boot) is made without at.redact; AT+CPIN="..." is still redacted
    from at import redact
    from core.errors import forget

    calls = []
    real = redact.redact
    redact.redact = lambda cmd: calls.append(cmd) or real(cmd)  # (imported: ATError's lookup uses this one)
    try:
        m, at = _setup()
        m.rules["AT+CMQTTREL=0"] = b"\r\n+CMQTTREL: 0,11\r\n\r\nERROR\r\n"
        m.rules["AT+CPIN?"] = b"\r\n+CME ERROR: 14\r\n"
        m.rules['AT+CPIN="4711"'] = b"\r\n+CME ERROR: 16\r\n"
        e1 = await araises(Exception, at.cmd("AT+CMQTTREL=0"))
        e2 = await araises(Exception, at.cmd("AT+CPIN?"))
        e3 = await araises(Exception, at.cmd('AT+CPIN="4711"'))
        at.stop()
    finally:
        redact.redact = real
        forget("at.redact")
    assert calls == ['AT+CPIN="4711"'], calls
    assert e1.cmd == "AT+CMQTTREL=0" and e2.cmd == "AT+CPIN?"
    assert "4711" not in str(e3) and e3.cmd == "AT+CPIN=<redacted>"
