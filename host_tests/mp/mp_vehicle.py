# mp-heap: 256K
# VIN and trouble codes on both runtimes (telelogger/vehicle.py through status.vehicle_task and the
# dtc_read / dtc_clear commands), against a fake OBD: the VIN once per boot (retried while the ECU
# gives none) in the status, codes read at start and every obd.dtc_interval_s, an event when they
# change, clear only with confirm: true. The module is imported per check and dropped after.
import json
import sys

from loopfakes import EchoCommands, FakeObd, cfg, make, stop

VIN = "WP0ZZZ99ZTS390000"


class Link:
    def __init__(self, obd):
        self.obd = obd
        self.sent = []

    async def query(self, cmd, timeout_ms=0):
        self.sent.append(cmd)
        if cmd == "04":
            self.obd.codes = {3: [], 7: []}
            return ["44"]
        return ["NO DATA"]


class DiagObd(FakeObd):
    long_ms = 5000

    def __init__(self, vin_fails=0):
        FakeObd.__init__(self, {0x0C: 1800, 0x0D: 50, 0x05: 88})
        self.codes = {3: ["P0133", "C0123"], 7: ["P0300"]}
        self.vin_fails = vin_fails
        self.vin_calls = 0
        self.dtc_calls = 0
        self.link = Link(self)

    async def vin(self, tries=2):
        self.vin_calls += 1
        if self.vin_fails:
            self.vin_fails -= 1
            raise OSError("0902: NO DATA")
        return VIN

    async def dtcs(self, mode=3):
        self.dtc_calls += 1
        return list(self.codes[mode])


def _events(pub):
    return [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/event"]


def _conf(s=60):
    c = cfg()
    c["obd"] = {"enabled": True, "pids": {"0C": 1000, "0D": 1000, "05": 3000}, "dtc_interval_s": s}
    return c


async def test_vin_and_codes_at_start_then_events_only_on_change():
    from telelogger import status

    obd = DiagObd()
    t, clk, pub, store, _ = make(_conf(60), obd=obd)
    t.start()
    await clk.advance(12000)
    ev = _events(pub)
    assert len(ev) == 1, ev
    e = ev[0]
    assert e["event"] == "dtc" and e["id"] == "TEST01" and e["vin"] == VIN, e
    assert e["stored"] == ["P0133", "C0123"] and e["pending"] == ["P0300"], e
    assert e["ts"] is None and e["boot"] == 0 and e["uptime_ms"] > 0
    assert status.status(t)["vin"] == VIN
    assert "telelogger.vehicle" not in sys.modules  # dropped after each check
    await clk.advance(130000)  # two more checks, nothing changed: no event, the VIN not read again
    assert len(_events(pub)) == 1 and obd.vin_calls == 1 and obd.dtc_calls >= 6, obd.dtc_calls
    obd.codes[7] = []
    obd.codes[3] = ["P0133", "C0123", "P0420"]
    await clk.advance(61000)
    ev = _events(pub)
    assert len(ev) == 2 and ev[1]["stored"][-1] == "P0420" and ev[1]["pending"] == [], ev
    pubs = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/status"]
    await stop(t, clk)
    assert pubs and pubs[-1]["vin"] == VIN


async def test_one_load_of_the_diagnostics_serves_a_whole_check():
    """The VIN and both code reads of a check find obdii/diag.py loaded once for the check (Obd.vin/dtcs import it
    per call otherwise), and it is gone again after the check."""
    seen = []

    class SeenObd(DiagObd):
        async def vin(self, tries=2):
            seen.append(sys.modules.get("obdii.diag"))
            return await DiagObd.vin(self, tries)

        async def dtcs(self, mode=3):
            seen.append(sys.modules.get("obdii.diag"))
            return await DiagObd.dtcs(self, mode)

    from core.errors import forget

    forget("obdii.diag")
    obd = SeenObd()
    t, clk, pub, store, _ = make(_conf(60), obd=obd)
    t.start()
    await clk.advance(12000)
    await stop(t, clk)
    assert len(seen) == 3 and seen[0] is not None and seen[0] is seen[1] is seen[2], seen
    assert "obdii.diag" not in sys.modules and "telelogger.vehicle" not in sys.modules


async def test_vin_retried_when_the_ecu_gave_none():
    from telelogger import status

    obd = DiagObd(vin_fails=2)
    t, clk, pub, store, _ = make(_conf(600), obd=obd)
    t.start()
    await clk.advance(12000)
    assert status.status(t)["vin"] is None and obd.vin_calls == 1
    assert _events(pub)[0]["vin"] is None  # the codes do not wait for the VIN
    await clk.advance(200000)  # retries after 60 s, then 120 s
    await stop(t, clk)
    assert obd.vin_calls == 3 and status.status(t)["vin"] == VIN, obd.vin_calls
    assert obd.dtc_calls == 2  # the codes only at start: the interval is 600 s


async def test_event_kept_while_offline_and_sent_after():
    obd = DiagObd()
    t, clk, pub, store, _ = make(_conf(60), obd=obd)
    pub.up = False
    t.start()
    await clk.advance(12000)
    assert _events(pub) == [] and obd.dtc_calls == 2
    pub.up = True
    await clk.advance(40000)
    await stop(t, clk)
    ev = _events(pub)
    assert len(ev) == 1 and ev[0]["stored"] == ["P0133", "C0123"], ev
    assert ev[0]["uptime_ms"] < 12000  # when the codes were read, not when the event could be sent


async def test_dtc_read_and_clear_commands():
    from telelogger.cmdhandlers import handlers

    obd = DiagObd()
    t, clk, pub, store, _ = make(_conf(600), obd=obd)
    t.commands = EchoCommands(handlers(t))
    t.start()
    await clk.advance(3000)
    for body in ({"cmd": "dtc_read"}, {"cmd": "dtc_clear", "args": {}}, {"cmd": "dtc_clear", "args": {"confirm": False}},
                 {"cmd": "dtc_clear", "args": {"confirm": True}}):
        pub.inject("fm/TEST01/cmd", json.dumps(body).encode())
        await clk.advance(200)
    await stop(t, clk)
    r = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]
    assert r[0]["ok"] and r[0]["result"] == {"vin": VIN, "stored": ["P0133", "C0123"], "pending": ["P0300"]}, r[0]
    for x in r[1:3]:
        assert x["ok"] is False and '"confirm": true' in x["error"], x
    assert obd.link.sent == ["04"]  # only the confirmed one reached the ECU
    assert r[3]["ok"] and r[3]["result"] == {"vin": VIN, "stored": [], "pending": [], "cleared": True}, r[3]
    ev = _events(pub)
    assert ev[-1]["stored"] == [] and ev[-1]["pending"] == [], ev
    assert "telelogger.vehicle" not in sys.modules and "telelogger.dtccmd" not in sys.modules


async def test_without_obd_the_commands_say_why():
    from telelogger.cmdhandlers import handlers

    c = cfg()
    c["obd"] = {"enabled": False}
    t, clk, pub, store, _ = make(c)
    t.obd = None
    t.commands = EchoCommands(handlers(t))
    t.start()
    await clk.advance(1000)
    pub.inject("fm/TEST01/cmd", b'{"cmd":"dtc_read"}')
    await clk.advance(200)
    await stop(t, clk)
    r = [json.loads(p) for tp, p, q in pub.sent if tp == "fm/TEST01/reply"]
    assert r[0]["ok"] is False and "no OBD link" in r[0]["error"], r
