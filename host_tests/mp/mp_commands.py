# telelogger.commands on both runtimes: HMAC-SHA256, the sealed envelope bound to device and
# direction, MAC before parsing, freshness (persisted n, UTC window or boot challenge), fail closed.
import json
import os
from binascii import hexlify

import cmdsigner as S
from mptest import Skip, raises
from telelogger import cmdcheck as K
from telelogger import cmdseal as E
from telelogger import commands as C

KEY = "0123456789abcdef-test-key"
DEV = "DEV01"
NOW_MS = 1700000000000
TS = NOW_MS // 1000


class FakeClock:
    def __init__(self):
        self.t = 0

    def ticks_ms(self):
        return self.t

    def diff(self, a, b):
        return a - b


def _handler(utc=NOW_MS, dev=DEV, **kw):
    calls = []

    def mk(name):
        async def fn(args):
            calls.append((name, args))
            return {"did": name}

        return fn

    handlers = {n: mk(n) for n in ("ping", "status", "set_interval", "flush", "reboot")}
    clock = [utc]
    h = C.CommandHandler(KEY, kw.pop("clk", FakeClock()), handlers, utc_ms=lambda: clock[0], device_id=dev, **kw)
    return h, calls, clock


def _run(h, payload):
    import asyncio

    return asyncio.run(h.handle(payload))


def _reply(h, payload, dev=DEV):
    return S.verify_reply(KEY, _run(h, payload), dev)


def _cmd(cmd, args=None, ts=TS, n=1, key=KEY, dev=DEV, **extra):
    body = {"cmd": cmd, "args": args or {}}
    if ts is not None:
        body["ts"] = ts
    if n is not None:
        body["n"] = n
    body.update(extra)
    return S.sign(key, body, dev)


def _tmp():
    return "/tmp/mpcmd-" + "".join("%02x" % b for b in os.urandom(5))


def _rm(path):
    for p in (path, path + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass


def test_hmac_rfc4231_case2():
    d = S.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert hexlify(d) == b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hmac_rfc4231_case6_long_key():
    d = S.hmac_hex(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")
    assert d == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_hmac_matches_cpython_hmac():
    try:
        import hashlib
        import hmac
    except ImportError:
        raise Skip("no hmac module (MicroPython): covered by the RFC 4231 vectors")
    for klen in (0, 1, 32, 63, 64, 65, 200):
        key = bytes((i * 7 + klen) & 0xFF for i in range(klen))
        for msg in (b"", b"x", b"m" * 1000):
            assert S.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_mac_input_is_domain_device_direction_body():
    """FORMAT.md: MAC = HMAC(key, "fm-cmd-v2\\n" + id + "\\nreq\\n" + BODY), payload = BODY[:-1] + mac."""
    p = _cmd("ping")
    tail = 74  # len(',"mac":"') + 64 hex digits + len('"}') (FORMAT.md)
    body = p[:-tail] + b"}"
    assert p[-tail:] == b',"mac":"' + S.hmac_hex(KEY, b"fm-cmd-v2\nDEV01\nreq\n" + body).encode() + b'"}'
    assert json.loads(body) == {"cmd": "ping", "args": {}, "ts": TS, "n": 1}


def test_accepts_signed_ping_and_runs_handler():
    h, calls, _ = _handler()
    p = _cmd("ping", nonce="n1")
    r = _reply(h, p)
    assert r["ok"] is True and r["cmd"] == "ping" and r["nonce"] == "n1" and r["n"] == 1, r
    assert r["result"] == {"did": "ping"} and r["re"] == p[-66:-50].decode()  # re: the request's mac
    assert "chal" not in r  # UTC known: no challenge needed
    assert calls == [("ping", {})]


def test_request_for_another_device_refused():
    """Issue 11 §1: with one key on two devices, a command signed for A is refused by B."""
    a, calls_a, _ = _handler(dev="CAR-A")
    b, calls_b, _ = _handler(dev="CAR-B")
    p = _cmd("reboot", dev="CAR-A")
    r = _reply(b, p, "CAR-B")
    assert r["ok"] is False and r["error"] == "bad mac", r
    assert calls_b == []
    assert _reply(a, p, "CAR-A")["ok"] is True and calls_a == [("reboot", {})]


def test_reply_is_never_a_request():
    """Domain separation: a device's signed reply, fed back to it as a request, is refused; a
    request is not a valid reply either."""
    h, calls, _ = _handler()
    reply = _run(h, _cmd("ping"))
    assert S.verify_reply(KEY, reply, DEV)["ok"]
    # a reply shaped like a command: {"ok":..,"cmd":"reboot",...} signed as a reply
    forged_src = S.seal_raw(KEY, b'{"cmd": "reboot", "n": 99, "ts": %d}' % TS, DEV, E.REP)
    r = _reply(h, forged_src)
    assert r["ok"] is False and r["error"] == "bad mac", r
    r = _reply(h, reply)
    assert r["ok"] is False and r["error"] == "bad mac", r
    raises(ValueError, S.verify_reply, KEY, _cmd("ping", n=2), DEV)
    assert calls == [("ping", {})]


def test_set_interval_args_validated_and_normalised():
    h, calls, _ = _handler()
    r = _reply(h, _cmd("set_interval", {"target": "obd.pids.0c", "ms": 2000}))
    assert r["ok"], r
    assert calls == [("set_interval", {"target": "obd.pids.0C", "ms": 2000})]
    for i, bad in enumerate(
        (
            {"target": "obd.pids.0C", "ms": 5},
            {"target": "obd.pids.0C"},
            {"target": "broker.host", "ms": 1000},
            {"target": "obd.pids.0C", "ms": 1000, "extra": 1},
            {"target": "obd.pids.0C", "ms": True},
        )
    ):
        r = _reply(h, _cmd("set_interval", bad, n=10 + i))
        assert r["ok"] is False and "args." in r["error"], r
    assert len(calls) == 1


def test_rejections_take_no_action():
    h, calls, _ = _handler()
    cases = [
        (b"{nope", "no mac"),
        (b"[1,2]", "no mac"),
        (b'{"cmd":"ping"}', "no mac"),
        (b'{"cmd":"ping","mac":"' + b"zz" * 32 + b'"}', "malformed mac"),
        (_cmd("ping")[:-3] + b'A"}', "bad mac"),  # upper-case hex: the device signs and wants lowercase
        (_cmd("ping") + b"\n", "no mac"),  # the payload ends with the mac: no trailing bytes
        (_cmd("ping", key="another-key-of-16+chars"), "bad mac"),
        (_cmd("selfdestruct"), "unknown cmd"),
        (_cmd("ping", ts=TS - 3600), "stale"),
        (_cmd("ping", ts=TS + 3600), "stale"),
        (_cmd("ping", ts=None), "ts required"),
        (_cmd("ping", n=None), "n: expected"),
        (_cmd("ping", n=0), "n: expected"),
        (_cmd("ping", n=True), "n: expected"),
        (_cmd("ping", mac="x"), "unknown member"),
        (_cmd("ping", nonce=""), "nonce"),
        (_cmd("ping", args=[1]), "args: expected an object"),
        (b"\xff\xfe", "no mac"),
    ]
    for payload, word in cases:
        r = _reply(h, payload)
        assert r["ok"] is False and word in r["error"], (payload, r)
    assert calls == []
    assert h.stats["rejected"] == len(cases)


def test_tampered_body_rejected():
    h, calls, _ = _handler()
    p = _cmd("set_interval", {"target": "intervals.status_ms", "ms": 60000})
    r = _reply(h, p.replace(b"60000", b"10000"))
    assert r["ok"] is False and r["error"] == "bad mac"
    r = _reply(h, p.replace(b'"cmd": ', b'"cmd":'))  # same JSON, other bytes: the bytes are signed
    assert r["ok"] is False and r["error"] == "bad mac"
    assert calls == []


def test_replay_rejected_and_n_must_grow():
    h, calls, _ = _handler()
    p = _cmd("reboot", {"delay_ms": 100}, n=5)
    assert _reply(h, p)["ok"]
    r = _reply(h, p)
    assert r["ok"] is False and "replay" in r["error"]
    r = _reply(h, _cmd("ping", n=4))
    assert r["ok"] is False and "replay: n 4 not above last 5" in r["error"], r
    assert _reply(h, _cmd("ping", n=6))["ok"]
    assert calls == [("reboot", {"delay_ms": 100}), ("ping", {})]


def test_mac_checked_before_any_parsing():
    """Issue 11 §2: deep nesting or a 10,000-digit integer in an unauthenticated message costs
    nothing but slicing and one HMAC: the body checks (cmdcheck, the only json.loads) are not
    even loaded before the mac matched, and are dropped again after an authentic one."""
    import sys

    h, calls, _ = _handler()
    fake_mac = b',"mac":"' + b"0" * 64 + b'"}'
    deep = b'{"a":' + b"[" * 400 + b"]" * 400 + fake_mac
    big = b'{"cmd":"ping","n":' + b"9" * 10000 + fake_mac
    sys.modules.pop("telelogger.cmdcheck", None)
    r1 = _run(h, deep)
    assert "telelogger.cmdcheck" not in sys.modules
    r2 = _run(h, big)
    assert "telelogger.cmdcheck" not in sys.modules
    assert S.verify_reply(KEY, r1, DEV)["error"] == "bad mac"
    assert "at most 1024" in S.verify_reply(KEY, r2, DEV)["error"]
    assert _reply(h, _cmd("ping"))["ok"] and "telelogger.cmdcheck" not in sys.modules
    assert calls == [("ping", {})]


def test_authentic_but_unbounded_body_refused_clearly():
    h, calls, _ = _handler()
    deep = S.seal_raw(KEY, b'{"cmd":"ping","n":1,"ts":%d,"args":{"a":' % TS + b"[" * 20 + b"]" * 20 + b"}}", DEV)
    r = _reply(h, deep)
    assert r["ok"] is False and "nested too deeply" in r["error"], r
    big = S.seal_raw(KEY, b'{"cmd":"ping","ts":%d,"n":' % TS + b"9" * 900 + b"}", DEV)
    r = _reply(h, big)
    assert r["ok"] is False and "n: expected" in r["error"], r
    uni = S.seal_raw(KEY, b'{"cmd":"ping","n":2,"ts":%d,"nonce":"\xc3\xa9"}' % TS, DEV)
    r = _reply(h, uni)
    assert r["ok"] is False and "not ASCII" in r["error"], r
    bad = S.seal_raw(KEY, b'{"cmd":ping}', DEV)
    assert "bad JSON" in _reply(h, bad)["error"]
    raises(ValueError, S.seal_raw, KEY, b'[1,{"cmd":"ping"}]', DEV)  # a body is an object: it ends with }
    assert calls == []
    try:  # CPython's json.dumps escapes non-ASCII (accepted), MicroPython's writes UTF-8 (refused)
        p = S.sign(KEY, {"cmd": "ping", "n": 3, "ts": TS, "nonce": "\u00e9"}, DEV)
    except ValueError as e:
        assert "ASCII" in str(e)
    else:
        assert b"\\u00e9" in p and _reply(h, p)["nonce"] == "\u00e9" and len(calls) == 1


def test_before_utc_a_boot_challenge_is_required():
    """Issue 11 §1: right after boot, without UTC, an old command (however high its n) is refused;
    the sender signs again with the challenge every reply carries."""
    clk = FakeClock()
    h, calls, utc = _handler(utc=None, clk=clk, window_s=60)
    r = _reply(h, _cmd("reboot", n=7))
    assert r["ok"] is False and "no UTC time yet" in r["error"] and len(r["chal"]) == 16, r
    chal = r["chal"]
    r = _reply(h, _cmd("reboot", n=8, chal="0" * 16))  # a previous boot's challenge
    assert r["ok"] is False and "no UTC" in r["error"]
    r = _reply(h, _cmd("status", n=9, ts=None, chal=chal))
    assert r["ok"] is True and r["chal"] == chal, r
    clk.t = 61000  # the challenge is older than the window: refused, a new one is issued
    r = _reply(h, _cmd("status", n=10, ts=None, chal=chal))
    assert r["ok"] is False and "no UTC" in r["error"] and r["chal"] != chal, r
    assert _reply(h, _cmd("status", n=11, ts=None, chal=r["chal"]))["ok"]
    h2, calls2, _ = _handler(utc=None, clk=clk)  # a reboot: a new challenge, the old one is void
    r = _reply(h2, _cmd("status", n=12, ts=None, chal=r["chal"]))
    assert r["ok"] is False and r["chal"] != chal
    assert calls == [("status", {}), ("status", {})] and calls2 == []


def test_replay_across_reboot_refused():
    """The counter file carries n across a reboot: a command accepted a moment ago is refused
    by the next boot, with and without UTC."""
    path = _tmp()
    try:
        h, _, _ = _handler(counter_path=path)
        p = _cmd("reboot", n=10)
        assert _reply(h, p)["ok"]
        h2, calls, _ = _handler(counter_path=path)  # rebooted, UTC known at once, same window
        assert h2.last_n == 10
        r = _reply(h2, p)
        assert r["ok"] is False and "replay" in r["error"]
        h3, calls3, _ = _handler(utc=None, counter_path=path)
        chal = _reply(h3, p)["chal"]
        r = _reply(h3, _cmd("reboot", n=10, chal=chal))  # even re-signed for this boot: n is used
        assert r["ok"] is False and "replay" in r["error"]
        assert calls == [] and calls3 == []
        with open(path) as f:
            assert f.read() == "10\n"
    finally:
        _rm(path)


def test_missing_counter_file_is_a_new_device():
    path = _tmp()
    try:
        h, calls, _ = _handler(counter_path=path)
        assert h.last_n == 0 and h.stats["counter_error"] is None
        assert _reply(h, _cmd("ping", n=1))["ok"] and calls == [("ping", {})]
    finally:
        _rm(path)


def test_corrupt_counter_fails_closed():
    """Issue 11 §1: an unreadable counter refuses every command (it used to become 0)."""
    for content in (b"", b"12x\n", b"-5", b"99999999999999999999", b"\xff\x00"):
        path = _tmp()
        try:
            with open(path, "wb") as f:
                f.write(content)
            h, calls, _ = _handler(counter_path=path)
            for n in (1, 10 ** 15):
                r = _reply(h, _cmd("ping", n=n))
                assert r["ok"] is False and r["error"].startswith("command counter unreadable"), (content, r)
                assert "deploy" in r["error"]
            r = _reply(h, _cmd("ping", key="wrong-key-wrong-key"))
            assert r["error"] == "bad mac"  # unauthenticated senders learn nothing more
            assert calls == [] and h.stats["counter_error"].startswith("command counter unreadable")
            with open(path, "rb") as f:
                assert f.read() == content  # left for the operator to inspect
        finally:
            _rm(path)


class RecFS:
    """Real files, recorded calls; fail_open/fail_rename make those calls raise OSError."""

    def __init__(self, fail_open=None, fail_rename=False):
        self.ops = []
        self.fail_open = fail_open
        self.fail_rename = fail_rename

    def open(self, path, mode):
        self.ops.append(("open", path, mode))
        if self.fail_open is not None and mode == "rb":
            raise OSError(self.fail_open)
        return open(path, mode)

    def sync(self, f):
        self.ops.append(("sync",))
        f.flush()

    def rename(self, a, b):
        self.ops.append(("rename", a, b))
        if self.fail_rename:
            raise OSError(28)
        os.rename(a, b)


def test_unreadable_counter_fails_closed():
    fs = RecFS(fail_open=5)  # EIO
    h, calls, _ = _handler(counter_path="/nonexistent/cmd_n", fs=fs)
    r = _reply(h, _cmd("ping"))
    assert r["ok"] is False and "command counter unreadable" in r["error"] and calls == []


def test_counter_written_atomically_before_the_command_runs():
    path = _tmp()
    try:
        fs = RecFS()
        h, calls, _ = _handler(counter_path=path, fs=fs)
        assert _reply(h, _cmd("ping", n=3))["ok"]
        assert fs.ops[1:] == [("open", path + ".tmp", "wb"), ("sync",), ("rename", path + ".tmp", path)], fs.ops
        fs.fail_rename = True  # flash full: the command does not run, the old counter stays
        r = _reply(h, _cmd("reboot", n=4))
        assert r["ok"] is False and "cannot store the command counter" in r["error"], r
        assert calls == [("ping", {})] and h.last_n == 3
        with open(path) as f:
            assert f.read() == "3\n"
    finally:
        _rm(path)


def test_replayed_huge_n_cannot_lock_out():
    """An old command is refused before its n is stored, however high; n above 2**53-1 is refused."""
    h, calls, _ = _handler()
    r = _reply(h, _cmd("ping", n=K.MAX_N, ts=TS - 86400))
    assert r["ok"] is False and "stale" in r["error"] and h.last_n == 0
    r = _reply(h, _cmd("ping", n=K.MAX_N + 1))
    assert r["ok"] is False and "n: expected" in r["error"] and h.last_n == 0
    assert _reply(h, _cmd("ping", n=2))["ok"] and h.last_n == 2


def test_handler_failure_reported():
    async def boom(args):
        raise RuntimeError("disk on fire")

    h = C.CommandHandler(KEY, FakeClock(), {"flush": boom}, utc_ms=lambda: NOW_MS, device_id=DEV)
    r = _reply(h, _cmd("flush"))
    assert r["ok"] is False and "disk on fire" in r["error"]
    r = _reply(h, _cmd("ping", n=2))
    assert r["ok"] is False and "not supported" in r["error"]


def test_reply_mac_detects_tampering():
    h, _, _ = _handler()
    r = _run(h, _cmd("ping"))
    assert S.verify_reply(KEY, r, DEV)["ok"]
    raises(ValueError, S.verify_reply, KEY, r.replace(b'"ok": true', b'"ok": false'), DEV)
    raises(ValueError, S.verify_reply, "wrong-key-wrong-key", r, DEV)
    raises(ValueError, S.verify_reply, KEY, r, "DEV02")


def test_key_and_device_id_required():
    raises(ValueError, C.CommandHandler, "", None, {}, device_id=DEV)
    raises(ValueError, C.CommandHandler, KEY, None, {})
    raises(ValueError, C.CommandHandler, KEY, None, {}, device_id="a\nb")


def test_format_md_worked_example():
    """The payload of FORMAT.md's worked example (test_command_signer.py checks it is the file's)."""
    key, dev = "example-key-for-FORMAT-md-do-not-use-0123456789", "ABC123"
    mac = "3666551c1b9656ecbe5241b20bb1ce142a0e52db296c69ca4fc32ed368a2343f"
    p = b'{"args":{"delay_ms":1000},"cmd":"reboot","n":1764000000000,"ts":1764000000,"mac":"' + mac.encode() + b'"}'
    calls = []

    async def reboot(args):
        calls.append(args)
        return {"rebooting": True}

    h = C.CommandHandler(key, FakeClock(), {"reboot": reboot}, utc_ms=lambda: 1764000000000 + 299000, device_id=dev)
    r = S.verify_reply(key, _run(h, p), dev)
    assert r["ok"] is True and r["re"] == mac[:16] and calls == [{"delay_ms": 1000}], r
