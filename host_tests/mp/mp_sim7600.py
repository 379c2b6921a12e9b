# modem.sim7600 / modem.bringup / modem.netreg against a scripted AT peer (both runtimes): registration verdicts,
# AT+CTZU=1, CCLK time zones, one error class with .kind, the bring-up module dropped after use.
import sys

from at.engine import CME, ERROR, ATError, Reply
from core.compat import Clock
from modem.sim7600 import ModemError, Sim7600
from mptest import Skip, araises

FAST = {"poll_ms": 5, "reg_poll_ms": 20, "reg_timeout_ms": 200, "boot_timeout_ms": 200, "sim_timeout_ms": 200}


class ScriptAT:
    """at.engine.ATEngine's cmd/on_urc: replies[cmd] = [lines] (or an exception to raise)."""

    def __init__(self, replies):
        self.replies = replies
        self.sent = []
        self.urcs = {}

    def on_urc(self, prefix, fn, body_len=None):
        self.urcs[prefix] = fn

    async def cmd(self, c, timeout_ms=1000, **kw):
        self.sent.append(c)
        r = self.replies.get(c, [])
        if isinstance(r, Exception):
            raise r
        rep = Reply(c)
        rep.lines = list(r)
        rep.final = "OK"
        return rep


def modem_at(creg, cgreg, cereg, **extra):
    rep = {
        "ATI": ["Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600E-H", "Revision: LE20B04SIM7600M22"],
        "AT+CPIN?": ["+CPIN: READY"],
        "AT+CREG?": ["+CREG: 1,%d" % creg],
        "AT+CGREG?": ["+CGREG: 1,%d" % cgreg],
        "AT+CEREG?": ["+CEREG: 1,%d" % cereg],
        "AT+CSQ": ["+CSQ: 20,99"],
        "AT+CCLK?": ['+CCLK: "26/12/01,10:00:00+40"'],
    }
    rep.update(extra)
    return ScriptAT(rep)


async def test_data_only_sim_creg_denied_ceree_registered_is_up():
    at = modem_at(3, 0, 5)
    m = Sim7600(at, Clock(), FAST)
    info = await m.bring_up()
    assert info["reg"] == (3, 0, 5), info
    assert info["signal_dbm"] == -73 and info["time"] == (2026, 12, 1, 10, 0, 0, 40)


async def test_creg_denied_while_lte_searches_waits_and_times_out_not_denied():
    at = modem_at(3, 2, 2)
    e = await araises(ModemError, Sim7600(at, Clock(), FAST).bring_up())
    assert e.kind == "reg_timeout", (e.kind, str(e))
    assert "not registered after 200 ms" in str(e) and "CREG 3" in str(e), str(e)
    assert at.sent.count("AT+CEREG?") >= 2  # kept polling instead of giving up at the first CREG 3


async def test_denied_only_when_every_reporting_domain_is_denied():
    at = modem_at(3, 3, 3, **{"AT+CGREG?": ATError("AT+CGREG?", msg="ERROR", kind=ERROR)})
    e = await araises(ModemError, Sim7600(at, Clock(), FAST).bring_up())
    assert e.kind == "reg_denied" and e.code == 3, (e.kind, e.code)
    assert "denied (CREG 3, CGREG None, CEREG 3)" in str(e), str(e)
    assert at.sent.count("AT+CEREG?") == 1  # at once, no waiting


def test_reg_verdict_table():
    from modem.netreg import reg_verdict

    assert reg_verdict(3, None, 1) == "ok" and reg_verdict(None, None, 5) == "ok"
    assert reg_verdict(1, None, None) == "ok"  # CREG counts only when neither packet domain answers
    assert reg_verdict(1, 2, 2) is None and reg_verdict(3, 2, None) is None and reg_verdict(3, 0, 3) is None
    assert reg_verdict(3, 3, 3) == "denied" and reg_verdict(None, None, 3) == "denied"
    assert reg_verdict(None, None, None) is None


async def test_bring_up_asks_for_network_time_zone_updates():
    at = modem_at(1, 1, 1, **{"AT+CTZU=1": ATError("AT+CTZU=1", msg="ERROR", kind=ERROR)})
    await Sim7600(at, Clock(), FAST).bring_up()  # an older firmware refusing CTZU is not fatal
    assert "AT+CTZU=1" in at.sent and at.sent.index("AT+CTZU=1") < at.sent.index("AT+CREG?"), at.sent


async def test_bringup_module_is_dropped_after_each_step():
    from core.errors import forget

    forget("modem.bringup")
    forget("modem.netreg")  # test_reg_verdict_table imports it
    at = modem_at(1, 1, 1)
    m = Sim7600(at, Clock(), FAST)
    await m.wait_ready()
    assert "modem.bringup" not in sys.modules
    assert "bringup" not in sys.modules["modem"].__dict__
    await m.bring_up()
    assert "modem.bringup" not in sys.modules and "modem.netreg" not in sys.modules
    assert "netreg" not in sys.modules["modem"].__dict__
    for p in ("+CREG:", "+CGREG:", "+CEREG:"):
        assert at.urcs[p] is None, p  # no handler of the dropped module left in the engine
    e = await araises(ModemError, Sim7600(ScriptAT({"AT": ATError("AT", msg="ERROR", kind=ERROR)}), Clock(), FAST).wait_ready(50))
    assert e.kind == "not_responding" and "modem.bringup" not in sys.modules


async def test_bring_up_has_one_half_loaded_at_a_time():
    # boot (modem/bringup.py) until the APN, then attach (modem/netreg.py) from the registration
    # on: two step calls, each importing its own half for the call (core.errors.lookup drops it
    # again), the second only after the first returned, so a bring-up's peak is one half
    import modem.sim7600 as S
    from core.errors import forget

    forget("modem.bringup")
    forget("modem.netreg")  # test_reg_verdict_table imports it
    at = modem_at(1, 1, 1)
    calls = []
    seen = {}
    cmd = at.cmd
    real = S.lookup

    def lookup(mod, fn, *a):
        calls.append((mod, a[1]))  # step(self, name, args)
        return real(mod, fn, *a)

    async def watching(c, timeout_ms=1000, **kw):
        seen[c] = calls[-1]
        return await cmd(c, timeout_ms, **kw)

    at.cmd = watching
    S.lookup = lookup
    try:
        await Sim7600(at, Clock(), FAST).bring_up()
    finally:
        S.lookup = real
    # the network time (modem/nettime.py, its own small module: the loop asks for it too) last, from attach
    assert calls == [("modem.bringup", "boot"), ("modem.netreg", "attach"), ("modem.nettime", "network_time")], calls
    for c in ("AT", "ATI", "AT+CPIN?", "AT+CTZU=1"):
        assert seen[c] == calls[0], (c, seen[c])
    for c in ("AT+CREG=1", "AT+CREG?", "AT+CSQ"):
        assert seen[c] == calls[1], (c, seen[c])
    assert seen["AT+CCLK?"] == calls[2], seen["AT+CCLK?"]
    assert "modem.bringup" not in sys.modules and "modem.netreg" not in sys.modules
    assert "modem.nettime" not in sys.modules


def test_construction_imports_no_bringup():
    # the publisher is built on the boot peak: Sim7600() is resident (a stand-in with no
    # attributes in sys.modules fails the test if the constructor imports modem.bringup)
    class Trap:
        pass

    saved = sys.modules.pop("modem.bringup", None)
    sys.modules["modem.bringup"] = Trap()
    try:
        m = Sim7600(ScriptAT({}), None, {"apn": "web", "sim_pin": None, "cmd_timeout_ms": 700})
        d = Sim7600(ScriptAT({}))
    finally:
        del sys.modules["modem.bringup"]
        if saved is not None:
            sys.modules["modem.bringup"] = saved
    assert m.cfg == {"apn": "web", "cmd_timeout_ms": 700} and m.t == 700  # None settings left out
    assert m.model is None and m.revision is None and m.imei is None and m.info == {}
    assert d.cfg == {} and d.t == 5000 and d.clock is not None


async def test_sim_errors_are_modem_errors_with_kind_sim():
    at = modem_at(1, 1, 1, **{"AT+CPIN?": ["+CPIN: SIM PIN"]})
    e = await araises(ModemError, Sim7600(at, Clock(), FAST).bring_up())
    assert e.kind == "sim" and "cellular.sim_pin is empty" in str(e)


async def test_sim_pin_is_entered_once_and_a_refusal_names_the_key():
    cfg = dict(FAST, sim_pin="1234")
    at = modem_at(1, 1, 1, **{"AT+CPIN?": ["+CPIN: SIM PIN"]})  # still asking after the PIN went in
    e = await araises(ModemError, Sim7600(at, Clock(), cfg).sim_ready())
    assert e.kind == "sim" and "still asks for a PIN" in str(e) and at.sent.count('AT+CPIN="1234"') == 1, at.sent
    bad = ATError('AT+CPIN="1234"', 16, "incorrect password", kind=CME)
    at = modem_at(1, 1, 1, **{"AT+CPIN?": ["+CPIN: SIM PIN"], 'AT+CPIN="1234"': bad})
    e = await araises(ModemError, Sim7600(at, Clock(), cfg).sim_ready())
    assert e.kind == "sim" and e.code == 16 and "SIM PIN refused: incorrect password" in str(e), str(e)
    assert "1234" not in str(e)  # the PIN itself is in no error text


async def test_cclk_time_zone_is_quarter_hours_and_utc_conversion_subtracts_it():
    from core.errors import forget
    from modem.nettime import parse_cclk

    forget("modem.nettime")  # the parser alone is what this test needs (Sim7600 imports the module per call)
    t = parse_cclk('"26/12/01,10:00:00+40"')
    assert t == (2026, 12, 1, 10, 0, 0, 40)  # +40 quarter hours = UTC+10
    assert parse_cclk('"26/12/01,10:00:00-20"')[6] == -20
    from telelogger.modemctl import ModemCtl

    class Pub:  # ModemCtl reads the network time through pub.modem.network_time()
        class modem:
            cclk = None

            @classmethod
            async def network_time(cls):
                return cls.cclk

    ctl = ModemCtl(Pub, None, Clock())

    async def utc_ms(cclk):
        Pub.modem.cclk = cclk
        return await ctl.utc_ms()

    utc0 = await utc_ms((2026, 12, 1, 0, 0, 0, 0))
    assert await utc_ms(t) == utc0  # 10:00 at UTC+10 is 00:00 UTC
    assert await utc_ms(parse_cclk('"26/12/01,10:00:00-20"')) == utc0 + 15 * 3600 * 1000
    assert utc0 == 1796083200 * 1000  # 2026-12-01T00:00:00Z
    assert await utc_ms(None) is None  # no network time yet


async def test_bring_up_leaves_no_bytecode_resident():
    if sys.implementation.name != "micropython":
        raise Skip("heap figures are MicroPython's")
    import gc

    from core.errors import forget

    forget("modem.bringup")  # an earlier test may have imported it (as a module of the package, too)
    # warm up: the names (qstrs) a first bring-up interns stay for the interpreter's life, and the
    # qstr pool may grow by a few KB at that moment; neither is bytecode left resident
    await Sim7600(modem_at(1, 1, 1), Clock(), FAST).bring_up()
    at = modem_at(1, 1, 1)
    m = Sim7600(at, Clock(), FAST)
    await m.signal_dbm()  # warm up what the steady state allocates anyway
    gc.collect()
    a0 = gc.mem_alloc()
    await m.bring_up()
    # the steady state goes on: a stale pointer to the finished step in this frame's unused stack
    # slots (which the GC scans conservatively) is overwritten, as on the device
    await m.signal_dbm()
    gc.collect()
    grew = gc.mem_alloc() - a0
    print("MPINFO bring_up left %d bytes" % grew)
    assert grew < 1500, grew  # modem.bringup alone is ~5 KB of bytecode on 32-bit
