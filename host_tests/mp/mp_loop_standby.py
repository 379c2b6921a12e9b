# Telelogger loop tests on both runtimes (virtual clock, fakes in loopfakes.py): standby entry
# and exit, heartbeat, remote commands wiring, UTC correction, signal, watchdog.
import json

from loopfakes import EchoCommands, FakeGnss, FakeModem, FakeObd, GatePublisher, Wdt, cfg, make, stop

from telelogger.loop import FLUSH, RUN, STANDBY


async def test_engine_running_never_standby():
    # idling at a light for 10 minutes: no motion but the alternator charges (14.1 V)
    modem = FakeModem()
    t, clk, pub, store, obd = make(obd=FakeObd({0x0C: 800, 0x0D: 0, 0x05: 88}), modem=modem)
    t.start()
    for _ in range(10):
        await clk.advance(60000)
        pub.sent = []  # keep the heap small: only the counters matter here
    await stop(t, clk)
    assert t.state == RUN and t.counters["standby"] == 0 and modem.offs == 0
    c = t.counters
    assert c["records"] >= 120 and c["sent"] == c["records"] - store.pending()  # parked: one per 5 s


async def test_standby_enter_and_wake():
    # parked with a healthy battery (12.6 V, above voltage_off 11.8): no motion for stationary_s
    # alone is enough (issue 10 finding 3: it used to need a low voltage too, and never slept)
    modem = FakeModem()
    gnss = FakeGnss()
    obd = FakeObd({0x0C: 0, 0x0D: 0, 0x05: 30})
    obd.volts = 12.6
    t, clk, pub, store, obd = make(obd=obd, modem=modem, gnss=gnss)
    t.start()
    await clk.advance(50000)
    assert t.state == RUN  # stationary_s is 60
    await clk.advance(30000)
    assert t.state == STANDBY, t.state
    assert modem.offs == 1 and gnss.off == 1 and not pub.connected()
    assert obd.power == ["low"]  # the co-processor in its low-power mode (official: ATR + ATLP)
    inits = obd.inits
    assert store.pending() == 0  # flushed before sleeping
    status = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/status"]
    assert status and status[-1]["standby"] is True
    reads = obd.reads[0x0C]
    await clk.advance(60000)
    assert obd.reads[0x0C] == reads  # no sampling while asleep
    obd.volts = 13.9  # engine cranked
    await clk.advance(10000)
    assert t.state == RUN and modem.ons == 1 and t.counters["wakes"] == 1
    assert obd.power == ["low", "wake"]
    await clk.advance(5000)
    assert obd.inits > inits  # the link is initialised again after the co-processor's reset
    import sys

    assert "telelogger.standby_io" not in sys.modules  # what standby does leaves RAM once awake
    await stop(t, clk)
    assert obd.reads[0x0C] > reads
    assert pub.connected()


async def test_low_voltage_standby_even_in_motion():
    modem = FakeModem()
    obd = FakeObd({0x0C: 900, 0x0D: 40, 0x05: 80})  # moving at 40 km/h
    obd.volts = 11.2  # below voltage_off 11.8: protect the battery
    t, clk, pub, store, obd = make(obd=obd, modem=modem)
    t.start()
    await clk.advance(6000)
    assert t.state == RUN  # one low reading is no reason yet (a dip while cranking)
    await clk.advance(20000)
    st = t.state
    await stop(t, clk)
    assert st == STANDBY and modem.offs == 1, st


def test_standby_rules():
    from telelogger.standby import Standby

    sb = Standby({"voltage_off": 11.8, "voltage_wake": 13.6, "stationary_s": 600, "heartbeat_s": 0})
    sb.battery(12.6, 0)
    assert not sb.should_sleep(599999)
    assert sb.should_sleep(600000)  # healthy parked battery: stationary time alone
    sb.battery(14.2, 600000)
    assert not sb.should_sleep(700000)  # alternator charging: the engine idles
    sb.motion(30, 700000)
    sb.battery(12.5, 700000)
    assert not sb.should_sleep(1299999) and sb.should_sleep(1300000)
    off = Standby({"voltage_off": 0, "voltage_wake": 13.6, "stationary_s": 0, "heartbeat_s": 0})
    off.battery(3.0, 0)
    assert not off.should_sleep(10 ** 9)  # both rules off


async def test_standby_heartbeat():
    c = cfg()
    c["standby"]["heartbeat_s"] = 30
    modem = FakeModem()
    obd = FakeObd({0x0C: 0, 0x0D: 0, 0x05: 30})
    obd.volts = 12.0
    t, clk, pub, store, obd = make(c, obd=obd, modem=modem)
    t.start()
    await clk.advance(80000)
    assert t.state in (STANDBY, FLUSH)
    n0 = len(pub.sent)
    await clk.advance(100000)
    await stop(t, clk)
    assert t.counters["heartbeats"] >= 2
    hb = [json.loads(p) for tp, p, q in pub.sent[n0:] if tp == "fm/TEST01/status"]
    assert hb and hb[0]["heartbeat"] is True
    assert not modem.on  # powered down again after each heartbeat


async def test_commands_wiring():
    t, clk, pub, store, obd = make()
    from telelogger.cmdhandlers import handlers

    t.commands = EchoCommands(handlers(t))
    t.start()
    await clk.advance(3000)
    assert ("fm/TEST01/cmd", 1) in pub.subs
    pub.inject("fm/TEST01/cmd", b'{"cmd":"ping"}')
    pub.inject("fm/TEST01/cmd", b'{"cmd":"set_interval","args":{"target":"obd.pids.05","ms":500}}')
    pub.inject("other/topic", b'{"cmd":"reboot"}')  # not ours: ignored
    await clk.advance(100)
    r0 = obd.reads[0x05]
    pub.inject("fm/TEST01/cmd", b'{"cmd":"flush"}')
    await clk.advance(5000)
    pub.inject("fm/TEST01/cmd", b'{"cmd":"status"}')
    await clk.advance(100)
    await stop(t, clk)
    replies = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]
    assert len(replies) == 4, replies
    assert replies[0]["result"]["pong"] is True
    assert replies[1]["result"] == {"target": "obd.pids.05", "ms": 500}
    assert obd.reads[0x05] - r0 >= 8  # now every 500 ms
    assert replies[3]["result"]["queue"] == store.pending()
    assert t.counters["cmds"] == 4 and not t.reboot_req


async def test_set_interval_of_a_pid_not_configured_adds_it():
    t, clk, pub, store, obd = make()
    from telelogger.cmdhandlers import handlers

    t.commands = EchoCommands(handlers(t))
    assert 0x0F not in [p.pid for p in t.pids]
    t.start()
    await clk.advance(3000)
    pub.inject("fm/TEST01/cmd", b'{"cmd":"set_interval","args":{"target":"obd.pids.0F","ms":500}}')
    await clk.advance(3000)
    await stop(t, clk)
    p = [p for p in t.pids if p.pid == 0x0F]
    assert len(p) == 1 and p[0].interval_ms == 500, [(x.pid, x.interval_ms) for x in t.pids]
    assert obd.reads.get(0x0F, 0) >= 1  # sampled from then on (the fake has no value: backed off)


async def test_command_task_runs_only_while_commands_wait():
    import sys

    t, clk, pub, store, obd = make()
    from telelogger.cmdhandlers import handlers

    t.commands = EchoCommands(handlers(t))
    t.start()
    await clk.advance(3000)
    n = len(t.tasks)
    assert t.cmd_run is None and "telelogger.cmdrun" not in sys.modules  # nothing waits for commands
    pub.inject("fm/TEST01/cmd", b'{"cmd":"ping"}')
    assert t.cmd_run is not None  # started by the message
    pub.inject("fm/TEST01/cmd", b'{"cmd":"ping"}')
    await clk.advance(100)
    assert t.cmd_run is None and "telelogger.cmdrun" not in sys.modules  # done: ended, module forgotten
    assert len([1 for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]) == 2 and len(t.tasks) == n
    pub.inject("fm/TEST01/cmd", b'{"cmd":"ping"}')  # a later one starts it again
    await clk.advance(100)
    await stop(t, clk)
    assert len([1 for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]) == 3 and t.counters["cmds"] == 3


async def test_set_interval_keeps_the_config_limits():
    from telelogger.cmdhandlers import handlers

    t, clk, pub, store, obd = make()
    t.commands = EchoCommands(handlers(t))
    t.start()
    await clk.advance(3000)
    for target, ms in (("intervals.status_ms", 100), ("intervals.status_ms", 999), ("obd.pids.0C", 99),
                       ("gnss.interval_ms", 3600001)):
        pub.inject("fm/TEST01/cmd", json.dumps({"cmd": "set_interval", "args": {"target": target, "ms": ms}}).encode())
        await clk.advance(100)
    pub.inject("fm/TEST01/cmd", b'{"cmd":"set_interval","args":{"target":"intervals.status_ms","ms":1000}}')
    await clk.advance(100)
    await stop(t, clk)
    replies = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]
    assert [r["ok"] for r in replies] == [False, False, False, False, True], replies
    assert "1000" in replies[0]["error"] and "status_ms" in replies[0]["error"]
    assert t.status_ms == 1000 and t.gnss_ms == 1000
    assert [p.interval_ms for p in t.pids if p.pid == 0x0C] == [1000]


async def test_utc_from_gnss_and_signal():
    gnss = FakeGnss()
    modem = FakeModem()
    t, clk, pub, store, obd = make(gnss=gnss, modem=modem)
    t.start()
    await clk.advance(3500)
    assert t.utc_offset_ms is None
    gnss.fix.epoch = 1764000000 + clk.t // 1000
    gnss.fix.ms = clk.t % 1000
    gnss.fix.hour, gnss.fix.minute, gnss.fix.second = 16, 0, 3
    gnss.fix.updates = 1
    await clk.advance(3000)
    await stop(t, clk)
    assert abs(t.utc_offset_ms - 1764000000000) <= 1000  # the fix is read within one gnss interval
    recs = [json.loads(r) for s, r in store.recs] + [e[1] for tp, p, q in pub.sent if tp.endswith("/data")
                                                    for e in json.loads(p)["e"]]
    utc = [r for r in recs if r[1]]
    mono = [r for r in recs if not r[1]]
    assert utc and mono
    assert all(r[0] >= 1764000000000 for r in utc) and all(r[0] < 10000 for r in mono)
    assert t.last[0x81] == -73  # CSQ 20 -> -73 dBm


async def test_watchdog_stops_when_sender_hangs():
    pub = GatePublisher()
    t, clk, pub, store, obd = make(pub=pub)
    store.max_records = 100  # drop-oldest like the flash store: 1000 s of records do not fit the test heap
    t.wdt = Wdt()
    t.start()
    await clk.advance(10000)
    fed = t.wdt.n
    assert fed >= 8
    await clk.advance(600000)  # the publish never returns: the sender task is stuck
    assert t.wdt.n >= fed + 550  # a slow network alone is no reason to reset
    n = t.wdt.n
    await clk.advance(400000)
    await stop(t, clk)
    assert t.wdt.n < n + 320  # feeding stopped once the sender was silent for 900 s
    assert t.counters["mem_errors"] == 0 and store.dropped > 0


async def test_refused_commands_get_rate_limited_replies():
    import cmdsigner

    key = "k8Pq2vXz7LmN4rTb9WcY3hJd6FgS1aQe"
    c = cfg()
    c["secrets"] = {"hmac_key": key}
    t, clk, pub, store, obd = make(c)
    t.start()
    await clk.advance(3000)
    for _ in range(3):  # a flood of unauthenticated messages (the loop queues at most 4 at a time)
        pub.inject("fm/TEST01/cmd", b'{"cmd":"reboot","mac":"%s"}' % (b"0" * 64))
    pub.inject("fm/TEST01/cmd", b"garbage")
    await clk.advance(100)
    replies = [p for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]
    assert len(replies) == 1 and t.counters["cmds_unanswered"] == 3, (replies, t.counters)
    assert b"bad mac" in replies[0]
    chal = cmdsigner.verify_reply(key, replies[0], "TEST01")["chal"]  # no UTC yet: the boot challenge
    pub.inject("fm/TEST01/cmd", cmdsigner.sign(key, {"cmd": "ping", "args": {}, "n": 1, "chal": chal}, "TEST01"))
    await clk.advance(100)
    await clk.advance(11000)
    pub.inject("fm/TEST01/cmd", b"garbage")  # the window has passed: one reply again
    await clk.advance(100)
    await stop(t, clk)
    replies = [p for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]
    assert len(replies) == 3, replies
    assert cmdsigner.verify_reply(key, replies[1], "TEST01")["ok"] is True and not t.reboot_req
    assert b'"ok": false' in replies[2] or b'"ok":false' in replies[2]
