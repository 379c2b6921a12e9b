# mp-heap: 192K  (AT engine + CMQTT + Sim7600/Tls drivers + CellularPublisher + strict fake resident at once)
# net.cellular escalation on both runtimes against cmqttfake.FakeCmqtt (issue 10 §13): a CONNECT
# refused by the broker or the TLS peer is not a modem fault: no new bring-up (registration), no
# STOP/START, a backoff at the MQTT level and a message that says what to check.
from cmqttfake import setup, until
from core.errors import NotConnected
from modem import cmqtt as C
from mptest import Skip, araises
from net.cellular import CellularPublisher


def _pub(at, **kw):
    pub = CellularPublisher(at, client_id="dev1", host="broker.example", port=8883, max_attempts=4, backoff_ms=1, backoff_max_ms=2, **kw)
    ups = []

    async def bring_up():  # the registration a refusal must not repeat
        ups.append(1)

    pub.modem.bring_up = bring_up
    return pub, ups


async def test_repeated_refusals_cause_no_re_registration():
    m, at, _ = setup()
    pub, ups = _pub(at)
    m.connect_code = 15  # "require connection fail": e.g. mosquitto require_certificate, our cert not trusted
    e = await araises(NotConnected, pub.connect())
    assert e.code == 15 and "4 attempts" in str(e)
    assert len(ups) == 1, ups  # the one bring-up of the first connect
    assert m.cmds.count("AT+CMQTTSTART") == 1 and "AT+CMQTTSTOP" not in m.cmds, m.cmds
    assert sum(1 for c in m.cmds if c.startswith("AT+CMQTTCONNECT=")) == 4
    assert pub.stats["refusals"] == 4
    why = pub.stats["last_error"]
    assert "broker.example:8883" in why and "require connection fail" in why and "Not a modem fault" in why, why
    # the loop tries again later: still no registration, no service restart
    await araises(NotConnected, pub.connect())
    assert len(ups) == 1 and m.cmds.count("AT+CMQTTSTART") == 1 and "AT+CMQTTSTOP" not in m.cmds
    # the broker accepts again: connected without a bring-up
    m.connect_code = 0
    await pub.connect()
    assert pub.connected() and len(ups) == 1 and m.cmds.count("AT+CMQTTSTART") == 1
    at.stop()


async def test_a_fatal_refusal_is_raised_at_once_and_keeps_the_registration():
    m, at, _ = setup()
    pub, ups = _pub(at, tls=False)
    m.connect_code = 30  # bad user name or password: retrying cannot fix it
    e = await araises(C.CmqttError, pub.connect())
    assert e.code == 30 and C.is_refused(e.code)
    assert sum(1 for c in m.cmds if c.startswith("AT+CMQTTCONNECT=")) == 1
    assert "mqtt_user/mqtt_pass" in pub.stats["last_error"]
    await araises(C.CmqttError, pub.connect())
    assert len(ups) == 1 and m.cmds.count("AT+CMQTTSTART") == 1, (ups, m.cmds)
    at.stop()


async def test_a_modem_fault_still_escalates():
    m, at, _ = setup()
    pub, ups = _pub(at)
    m.connect_code = 9  # network not opened: the service must restart
    await araises(NotConnected, pub.connect())
    assert "AT+CMQTTSTOP" in m.cmds and len(ups) >= 2, (ups, m.cmds)
    at.stop()


async def test_after_nonet_the_next_connect_restarts_the_service_first():
    """+CMQTTNONET leaves the service needing STOP/START: the loop's next connect (pub.connect(), not
    a failed publish) starts at that level instead of spending an attempt on a CONNECT that fails. The
    service's reset loads modem.cmqtt_svc alone: neither the rare operations (modem.cmqtt_ops) nor the
    connect path (modem.cmqtt_rare) beside it."""
    import sys

    m, at, _ = setup()
    pub, ups = _pub(at)
    await pub.connect()
    assert pub.connected()
    m.connected = False
    m.feed(b"\r\n+CMQTTNONET\r\n")
    assert await until(lambda: not pub.connected())
    errors, n = pub.stats["errors"], len(m.cmds)
    seen = {}
    cmd = m._command

    def spy(c):
        k = c.split("=")[0]
        if k in ("AT+CMQTTSTOP", "AT+CMQTTSTART") and k not in seen:
            seen[k] = [x for x in ("modem.cmqtt_svc", "modem.cmqtt_ops", "modem.cmqtt_rare") if x in sys.modules]
        return cmd(c)

    had = "modem.cmqtt_ops" in sys.modules  # (a CPython test that imported it keeps it)
    m._command = spy
    await pub.connect()
    m._command = cmd
    assert pub.connected()
    want = ["modem.cmqtt_svc"] + (["modem.cmqtt_ops"] if had else [])
    assert seen == {"AT+CMQTTSTOP": want, "AT+CMQTTSTART": want}, seen
    ops = [c.split("=")[0] for c in m.cmds[n:] if c.startswith("AT+CMQTT")]
    assert "AT+CMQTTSTOP" in ops and "AT+CMQTTCONNECT" not in ops[: ops.index("AT+CMQTTSTOP")], ops
    assert ops.index("AT+CMQTTSTOP") < ops.index("AT+CMQTTSTART") < ops.index("AT+CMQTTCONNECT"), ops
    assert pub.stats["errors"] == errors and len(ups) == 1, (pub.stats, ups)  # no failed attempt, no registration
    at.stop()


async def test_a_failed_attempt_has_its_words_read_before_the_failure_half_runs():
    """A CmqttError's words (modem/code_texts.py) are read by the connect when its attempt failed,
    with the CMQTT connect path gone and before net.cellular_fail is loaded, not on top of it (at
    104K the network cut's recovery ran out of memory there)."""
    import sys

    from core.errors import forget
    from net import cellular_fail

    had = "net.cellular_fail" in sys.modules
    m, at, _ = setup()
    pub, ups = _pub(at)
    m.connect_code = 9
    real = cellular_fail.again
    seen = []

    async def spy(pub_, e, *a):
        seen.append((e.code, isinstance(e._w, tuple), "modem.cmqtt_rare" in sys.modules))
        return await real(pub_, e, *a)

    cellular_fail.again = spy
    try:
        await araises(NotConnected, pub.connect())
    finally:
        cellular_fail.again = real
        if not had:
            forget("net.cellular_fail")
    assert seen and all(w and not rare for _, w, rare in seen), seen
    at.stop()


async def test_a_silent_module_gets_its_power_key_pressed_by_the_recovery():
    """After a power loss the module is off: AT alone never wakes it (it used to send AT for ever)."""
    from modem.errors import ModemError

    m, at, _ = setup()
    presses = []
    pub, ups = _pub(at)
    calls = []

    async def bring_up():
        calls.append(1)
        if not presses:
            raise ModemError("modem does not answer AT", kind="not_responding")

    async def power_on():
        presses.append(1)
        return True

    pub.modem.bring_up = bring_up
    pub.power_on = power_on
    await pub.connect()
    assert pub.connected() and presses == [1] and len(calls) == 2, (presses, calls)
    at.stop()


async def test_a_connect_is_bounded_in_time():
    """One connect() ends within connect_budget_ms, so the sender beats its watchdog (a garage
    without coverage must not become a watchdog reset loop)."""
    m, at, _ = setup()
    pub, ups = _pub(at, connect_budget_ms=0)
    m.connect_code = 9
    e = await araises(NotConnected, pub.connect())
    assert "after 1 attempts" in str(e), str(e)
    at.stop()


def test_recovery_levels_agree_in_every_module():
    # const() levels leave no name on MicroPython, so each net module that uses one has its copy
    import sys

    if sys.implementation.name == "micropython":
        raise Skip("const() names are not module attributes on MicroPython")
    from net import cellular, cellular_fail, cellular_rare, cellular_setup

    for m in (cellular_rare, cellular_fail):
        assert [m._L_CONNECT, m._L_ACQUIRE, m._L_SERVICE, m._L_MODEM] == [0, 1, 2, 3], m
    assert cellular._L_SERVICE == cellular_setup._L_SERVICE == cellular_rare._L_SERVICE == cellular_fail._L_SERVICE
    assert cellular._L_MODEM == cellular_setup._L_MODEM == cellular_rare._L_MODEM == cellular_fail._L_MODEM


async def test_a_connect_loads_the_cmqtt_connect_path_once_and_drops_it():
    """START, ACCQ, CFG, CONNECT and the SUBSCRIBE after it run on one copy of modem.cmqtt_rare
    (one load per connect, not one per command: each load's allocations on a fragmented heap),
    and neither it nor net.cellular_rare stays imported once the connect ended, failed or not. A
    connect that works never loads the failure half (net.cellular_fail); one that fails has it
    only while a failure is handled."""
    import sys

    m, at, _ = setup()
    pub, ups = _pub(at)
    pub._remember("dev1/cmd", 1)
    seen = []
    cmd = m._command

    def spy(c):
        if c.startswith("AT+CMQTT"):
            seen.append((c.split("=")[0], sys.modules.get("modem.cmqtt_rare")))
            fail.append("net.cellular_fail" in sys.modules)
        return cmd(c)

    fail = []
    m._command = spy
    assert "modem.cmqtt_rare" not in sys.modules
    rare = "net.cellular_rare" in sys.modules  # (imported by a test above on CPython: kept then)
    had = "net.cellular_fail" in sys.modules  # (the same)
    await pub.connect()
    assert pub.connected() and m.subs, m.cmds
    ops = [s[0] for s in seen]
    assert ops[0] == "AT+CMQTTSTART" and "AT+CMQTTCONNECT" in ops and ops[-1] == "AT+CMQTTSUB", ops
    mods = [s[1] for s in seen]
    assert mods[0] is not None and all(x is mods[0] for x in mods), ops
    assert "modem.cmqtt_rare" not in sys.modules and ("net.cellular_rare" in sys.modules) == rare
    assert fail and (had or not any(fail) and "net.cellular_fail" not in sys.modules), fail
    # a connect that fails lets go of it as well, and of the failure half
    pub.mq._set_down("test")
    m.connect_code = 9
    del fail[:]
    await araises(NotConnected, pub.connect())
    assert "modem.cmqtt_rare" not in sys.modules and ("net.cellular_rare" in sys.modules) == rare
    assert had or ("net.cellular_fail" not in sys.modules and not any(fail)), fail
    at.stop()
