# mp-heap: 160K
# The OTA modules wired into the running telelogger (FORMAT.md "OTA updates"): the ota_* commands
# through cmdhandlers (otacmd/otaboot dropped after each), the chunk topic subscribed only with
# commands on and a key, chunks queued by on_message (bounded) and staged by a task that exists
# only while chunks wait (telelogger.ota dropped when idle), the status' "ota" field, mark_healthy
# after the first acked status, the reset of a build on trial that never gets healthy.
import json
import sys

import mp_ota_kit as K
from loopfakes import EchoCommands, cfg, make, stop

OTA_T = "fm/TEST01/ota"


def _cfg(key=K.KEY, enabled=True):
    c = cfg()
    if key:
        c["secrets"] = {"hmac_key": key}
    c["commands"] = {"enabled": enabled}
    return c


def _tl(root, key=K.KEY):
    t, clk, pub, store, obd = make(_cfg(key))
    t.device_id = K.DEV  # the kit signs for its device (topics stay TEST01's)
    t.ota_root = root
    from telelogger import loopinit

    loopinit.ota_info(t)
    from telelogger.cmdhandlers import handlers

    t.commands = EchoCommands(handlers(t))
    return t, clk, pub


def _replies(pub):
    return [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]


def _gone(*names):
    return not [n for n in names if "telelogger." + n in sys.modules]


async def test_chunk_topic_subscribed_only_with_commands_and_a_key():
    for c, want in ((_cfg(), True), (_cfg(key=None), False), (_cfg(enabled=False), False)):
        t, clk, pub, store, obd = make(c)
        t.start()
        await clk.advance(3000)
        assert ((OTA_T, 1) in pub.subs) == want, (c.get("secrets"), pub.subs)
        assert ("fm/TEST01/cmd", 1) in pub.subs
        pub.inject(OTA_T, b"FOC1 not for a device without OTA")  # ignored without the subscription
        await clk.advance(100)
        assert (t.ota_run is None and not t.otaq) if not want else True
        await stop(t, clk)


async def test_update_through_commands_and_the_chunk_topic():
    root = K.tmpdir()
    try:
        t, clk, pub = _tl(root)
        t.start()
        await clk.advance(3000)
        assert t.ota_info == {"ver": 0, "slot": "-", "trial": 0, "failed": None}, t.ota_info
        b = K.bundle(8)
        pub.inject("fm/TEST01/cmd", json.dumps({"cmd": "ota_begin", "args": K.begin_args(b)}).encode())
        await clk.advance(100)
        r = _replies(pub)[-1]
        assert r["ok"] and r["result"]["state"] == "receiving" and r["result"]["need"] == [[0, 0]], r
        assert _gone("otacmd", "otaboot")  # per command; ota stays while an update is staged
        msgs = list(K.all_msgs(b))
        bad = bytearray(msgs[1])
        bad[20] ^= 1  # a tampered chunk: refused with its reason, nothing written
        pub.inject(OTA_T, bytes(bad))
        assert t.ota_run is not None  # started by the chunk
        await clk.advance(50)
        assert t.ota_err == "chunk 0/1: bad mac (altered, another bundle or another key)", t.ota_err
        for m in msgs:
            pub.inject(OTA_T, m)
            await clk.advance(20)  # the task stages it; the queue never overflows at this pace
        assert t.counters["ota_dropped"] == 0 and t.ota_run is None
        pub.inject("fm/TEST01/cmd", b'{"cmd":"ota_status"}')
        await clk.advance(100)
        r = _replies(pub)[-1]["result"]
        assert r["state"] == "ready" and r["refused"] == 1 and r["need"] == [], r
        pub.inject("fm/TEST01/cmd", b'{"cmd":"ota_commit"}')
        await clk.advance(100)
        r = _replies(pub)[-1]
        assert r["ok"] and r["result"] == {"installed": 8, "slot": "a", "previous": 0, "reboot": True}, r
        assert t.reboot_req and _gone("otacmd", "otaboot", "ota")  # committed: nothing staged, ota dropped
        with open(root + "ota/ptr") as f:
            assert f.read() == "a 8 - 0 1\n"
        await stop(t, clk)
    finally:
        K.rmtree(root)


async def test_refusal_is_the_error_reply_and_queue_is_bounded():
    root = K.tmpdir()
    try:
        t, clk, pub = _tl(root)
        t.start()
        await clk.advance(3000)
        pub.inject("fm/TEST01/cmd", b'{"cmd":"ota_commit"}')
        await clk.advance(100)
        r = _replies(pub)[-1]
        assert not r["ok"] and r["error"] == "no update in progress", r
        assert _gone("otacmd", "otaboot", "ota")
        OTAQ_MAX = 3  # loopnet._OTAQ_MAX: chunk messages queued at most

        for _ in range(OTAQ_MAX + 2):  # a burst before the task runs: the rest dropped and counted
            pub.inject(OTA_T, b"FOC1xxxxxx")
        assert len(t.otaq) == OTAQ_MAX and t.counters["ota_dropped"] == 2
        await clk.advance(100)
        assert t.ota_run is None and not t.otaq and _gone("ota")  # idle: dropped again
        assert t.ota_err.startswith("chunk: not an OTA chunk"), t.ota_err
        await stop(t, clk)
    finally:
        K.rmtree(root)


def _back(cwd):
    import os

    os.chdir(cwd)


def _on_trial(root):
    import os

    from telelogger import otaboot

    os.mkdir(root + "ota")
    os.mkdir(root + "ota/b")
    otaboot.put(root + "ota/b/ok", "9\n")
    otaboot.put(root + "ota/ptr", otaboot.line("b", 9, "-", 0, 1))
    otaboot.put(root + "ota/boots", "2\n")
    cwd = os.getcwd()
    os.chdir(root + "ota/b")  # as otaboot.select() leaves it: this boot runs slot b
    return cwd


async def test_first_acked_status_marks_the_build_healthy():
    root = K.tmpdir()
    try:
        cwd = _on_trial(root)
        t, clk, pub = _tl(root)
        assert t.ota_info["trial"] == 2 and t.ota_trial_ms == 600000, (t.ota_info, t.ota_trial_ms)
        t.start()
        await clk.advance(12000)  # status every 10 s
        st = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/status"]
        assert st and st[0]["ota"]["trial"] == 2, st  # the status says where it stands
        with open(root + "ota/ptr") as f:
            assert f.read() == "b 9 - 0 0\n"  # healthy: stays
        assert t.ota_info["trial"] == 0 and t.ota_trial_ms is None and _gone("otaboot")
        await stop(t, clk)
    finally:
        _back(cwd)
        K.rmtree(root)


async def test_first_status_of_a_build_not_on_trial_leaves_otaboot_alone():
    """otaboot.mark_healthy has nothing to end on a build this boot knows is not on trial (its info says
    trial 0): the first status does not import otaboot (the run's highest heap peak was that status with
    it), nor telelogger/reboot.py. With no info (a flash otaboot.info could not read) it is asked as before."""
    calls = []

    class FakeOtaboot:  # stands in for telelogger.otaboot (telelogger/reboot.py's healthy imports it)
        TRIAL_S = 600

        @staticmethod
        def mark_healthy(root):
            calls.append(root)
            return False

        @staticmethod
        def info(root):
            return {"ver": 0, "slot": "-", "trial": 0, "failed": None}

    saved = sys.modules.pop("telelogger.otaboot", None)
    try:
        for info, want in (({"ver": 3, "slot": "a", "trial": 0, "failed": None}, 0), (None, 1)):
            del calls[:]
            t, clk, pub, store, obd = make(_cfg())
            t.ota_info = info
            t.start()
            sys.modules["telelogger.otaboot"] = FakeOtaboot  # (reboot.healthy forgets it after its call)
            await clk.advance(25000)  # statuses at 10 s and 20 s, both acked
            st = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/status"]
            assert len(st) == 2 and st[0]["ota"] == info, st
            assert len(calls) == want, (info, calls)
            assert "telelogger.reboot" not in sys.modules and "telelogger.statusmsg" not in sys.modules
            await stop(t, clk)
            sys.modules.pop("telelogger.otaboot", None)
    finally:
        sys.modules.pop("telelogger.otaboot", None)
        if saved is not None:
            sys.modules["telelogger.otaboot"] = saved


async def test_build_on_trial_never_healthy_is_reset():
    root = K.tmpdir()
    try:
        cwd = _on_trial(root)
        t, clk, pub = _tl(root)
        resets = []

        class Board:
            def reset(self):
                resets.append(t.now())

        t.board = Board()
        assert t.ota_trial_ms == 600000  # otaboot.TRIAL_S; shortened here (600 s of records would fill the test heap)
        t.ota_trial_ms = 30000
        pub.up = False  # never connects: no status
        t.start()
        await clk.advance(29000)
        assert not resets, (resets, t.reset_reason)
        await clk.advance(12000)
        assert len(resets) == 1 and t.reboot_req, resets
        with open(root + "ota/ptr") as f:
            assert f.read() == "b 9 - 0 1\n"  # still on trial: the boot count decides the rollback
        await stop(t, clk)
    finally:
        _back(cwd)
        K.rmtree(root)
