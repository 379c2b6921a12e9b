# telelogger.commands on both runtimes: HMAC-SHA256, canonical JSON, accept/reject, replay protection.
import json
import os

from mptest import Skip, raises
from telelogger import commands as C

KEY = "0123456789abcdef-test-key"
NOW_MS = 1700000000000


def _handler(utc=NOW_MS, **kw):
    calls = []

    def mk(name):
        async def fn(args):
            calls.append((name, args))
            return {"did": name}

        return fn

    handlers = {n: mk(n) for n in ("ping", "status", "set_interval", "flush", "reboot")}
    clock = [utc]
    h = C.CommandHandler(KEY, None, handlers, utc_ms=lambda: clock[0], **kw)
    return h, calls, clock


def _reply(h, payload):
    import asyncio

    r = asyncio.run(h.handle(payload))
    return C.verify_reply(KEY, r)


def _cmd(cmd, args=None, ts=NOW_MS // 1000, nonce="n1", n=None, key=KEY):
    body = {"cmd": cmd, "args": args or {}}
    if ts is not None:
        body["ts"] = ts
    if nonce is not None:
        body["nonce"] = nonce
    if n is not None:
        body["n"] = n
    return C.sign(key, body)


def test_hmac_rfc4231_case2():
    d = C.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert C.hexlify(d) == b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hmac_rfc4231_case6_long_key():
    d = C.hmac_hex(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")
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
            assert C.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_canonical_json():
    b = C.canonical({"b": [1, True, None], "a": "\u00e9\"\n", "c": {"z": 1, "y": -2}})
    assert b == b'{"a":"\\u00e9\\"\\n","b":[1,true,null],"c":{"y":-2,"z":1}}'
    assert json.loads(b) == {"b": [1, True, None], "a": "\u00e9\"\n", "c": {"z": 1, "y": -2}}
    raises(ValueError, C.canonical, {"x": 1.5})


def test_accepts_signed_ping_and_runs_handler():
    h, calls, _ = _handler()
    r = _reply(h, _cmd("ping"))
    assert r["ok"] is True and r["cmd"] == "ping" and r["nonce"] == "n1" and r["result"] == {"did": "ping"}
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
        r = _reply(h, _cmd("set_interval", bad, nonce="b%d" % i))
        assert r["ok"] is False and "args." in r["error"], r
    assert len(calls) == 1


def test_rejections_take_no_action():
    h, calls, _ = _handler()
    cases = [
        (b"{nope", "bad JSON"),
        (b"[1,2]", "bad JSON"),
        (b'{"cmd":"ping"}', "mac"),
        (_cmd("ping", key="another-key-of-16+chars"), "bad mac"),
        (_cmd("selfdestruct"), "unknown cmd"),
        (_cmd("ping", ts=NOW_MS // 1000 - 3600), "stale"),
        (_cmd("ping", ts=NOW_MS // 1000 + 3600), "stale"),
        (_cmd("ping", nonce=None), "nonce"),
        (b"\xff\xfe", "bad JSON"),
    ]
    for payload, word in cases:
        r = _reply(h, payload)
        assert r["ok"] is False and word in r["error"], (payload, r)
    assert calls == []
    assert h.stats["rejected"] == len(cases)


def test_tampered_body_rejected():
    h, calls, _ = _handler()
    d = json.loads(_cmd("set_interval", {"target": "intervals.status_ms", "ms": 60000}))
    d["args"]["ms"] = 1000
    r = _reply(h, json.dumps(d))
    assert r["ok"] is False and r["error"] == "bad mac"
    assert calls == []


def test_nonce_replay_rejected():
    h, calls, _ = _handler()
    p = _cmd("reboot", {"delay_ms": 100}, nonce="once")
    assert _reply(h, p)["ok"]
    r = _reply(h, p)
    assert r["ok"] is False and "replay" in r["error"]
    assert calls == [("reboot", {"delay_ms": 100})]


def test_nonce_memory_is_bounded_but_safe():
    h, calls, clock = _handler(nonces=3)
    base = NOW_MS // 1000
    for i in range(5):
        assert _reply(h, _cmd("ping", ts=base + i, nonce="x%d" % i))["ok"]
    assert len(h._nonces) == 3
    # x0 was forgotten, but its ts is at or below the floor: still refused
    r = _reply(h, _cmd("ping", ts=base, nonce="x0"))
    assert r["ok"] is False
    assert len(calls) == 5


def test_counter_when_no_utc():
    h, calls, clock = _handler(utc=None)
    clock[0] = None
    r = _reply(h, _cmd("status", ts=None, nonce=None))
    assert r["ok"] is False and "counter n" in r["error"]
    assert _reply(h, _cmd("status", ts=None, nonce=None, n=5))["ok"]
    r = _reply(h, _cmd("status", ts=None, nonce=None, n=5))
    assert r["ok"] is False and "replay" in r["error"]
    r = _reply(h, _cmd("status", ts=None, nonce=None, n=4))
    assert r["ok"] is False
    assert _reply(h, _cmd("status", ts=None, nonce=None, n=6))["ok"]
    assert len(calls) == 2


def test_counter_persists_across_restarts():
    path = "/tmp/mpcmd-" + "".join("%02x" % b for b in os.urandom(5))
    try:
        h, _, clock = _handler(utc=None, counter_path=path)
        clock[0] = None
        assert _reply(h, _cmd("ping", ts=None, nonce=None, n=10))["ok"]
        h2, calls, clock2 = _handler(utc=None, counter_path=path)
        clock2[0] = None
        assert h2.last_n == 10
        assert _reply(h2, _cmd("ping", ts=None, nonce=None, n=10))["ok"] is False
        assert calls == []
    finally:
        for p in (path, path + ".tmp"):
            try:
                os.remove(p)
            except OSError:
                pass


def test_handler_failure_reported():
    async def boom(args):
        raise RuntimeError("disk on fire")

    h = C.CommandHandler(KEY, None, {"flush": boom}, utc_ms=lambda: NOW_MS)
    r = _reply(h, _cmd("flush"))
    assert r["ok"] is False and "disk on fire" in r["error"]
    r = _reply(h, _cmd("ping", nonce="n2"))
    assert r["ok"] is False and "not supported" in r["error"]


def test_reply_mac_detects_tampering():
    h, _, _ = _handler()
    import asyncio

    r = asyncio.run(h.handle(_cmd("ping")))
    assert C.verify_reply(KEY, r)["ok"]
    raises(ValueError, C.verify_reply, KEY, r.replace(b'"ok": true', b'"ok": false'))
    raises(ValueError, C.verify_reply, "wrong-key-wrong-key", r)


def test_empty_key_refused():
    raises(ValueError, C.CommandHandler, "", None, {})
