"""End to end on CPython: firmware (ATEngine + CellularPublisher + Cmqtt + Sim7600 bring-up) ->
the strict SIM7600 simulator (SimStream) -> a real mosquitto -> a real paho subscriber.
The MicroPython run of the same path (1,000 messages over a pty) is test_cmqtt_e2e_mp below."""
import asyncio
import os
import queue
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from at.engine import ATEngine
from core.compat import Clock
from mphost import ROOT, spawn_mp
from net import cellular as NC
from peers.broker import Broker
from peers.sim7600 import Sim7600, SimPty, SimStream

SCALE = 0.01


@pytest.fixture(scope="module")
def mbroker():
    b = Broker().start()
    yield b
    b.stop()


class Sub:
    def __init__(self, port, topic):
        self.q = queue.Queue()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        ev = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
        self.c.on_subscribe = lambda *a: ev.set()
        self.c.on_message = lambda c, u, m: self.q.put((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert ev.wait(10)

    def take_until(self, pred, timeout=60):
        out = []
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                out.append(self.q.get(timeout=0.1))
            except queue.Empty:
                continue
            if pred(out):
                break
        return out

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def seqs(msgs, topic):
    return [int(p.split(b":")[0]) for t, p in msgs if t == topic]


def check_every_one_in_order(got, n):
    # QoS 1 is at-least-once: a publish whose PUBACK was lost with the connection is resent, so a
    # duplicate may follow; every message must arrive, and first arrivals must be in order.
    first = []
    seen = set()
    for s in got:
        if s not in seen:
            seen.add(s)
            first.append(s)
    assert first == list(range(n)), "missing/out of order: %s" % sorted(set(range(n)) - seen)[:20]


def test_publish_through_simulator_with_connlost(mbroker):
    sim = Sim7600(powered=True, time_scale=SCALE, seed=1)
    sub = Sub(mbroker.port, "e2e/cpy/#")
    n = 300

    async def main():
        at = ATEngine(SimStream(sim), poll_ms=1)
        at.start()
        pub = NC.CellularPublisher(at, Clock(), client_id="cpy1", host="127.0.0.1", port=mbroker.port, backoff_ms=20,
                                   modem_cfg={"poll_ms": 20, "apn": "internet"})
        await pub.connect()
        assert pub.modem.model == "SIMCOM_SIM7600E" and pub.modem.revision
        assert pub.modem.info["signal_dbm"] == -113 + 2 * 20
        for i in range(n):
            if i and i % 100 == 0:
                sim.connlost(0, 1)
            await pub.publish("e2e/cpy/data", b"%d:payload" % i, 1)
        await pub.disconnect()
        at.stop()
        return pub

    pub = asyncio.run(main())
    got = sub.take_until(lambda out: len(set(seqs(out, "e2e/cpy/data"))) >= n)
    sub.close()
    check_every_one_in_order(seqs(got, "e2e/cpy/data"), n)
    assert pub.stats["reconnects"] >= 2 and pub.stats["published"] == n


def _with_local_pub(client_id, body):
    """Run `await body(pub, sim)` with a CellularPublisher over the simulator and its in-memory
    broker; returns (pub, sim, broker)."""
    from peers.sim7600_mqtt import LocalBroker

    broker = LocalBroker()
    sim = Sim7600(powered=True, time_scale=SCALE, broker=broker)

    async def main():
        at = ATEngine(SimStream(sim), poll_ms=1)
        at.start()
        pub = NC.CellularPublisher(at, Clock(), client_id=client_id, host="broker.test", backoff_ms=20,
                                   modem_cfg={"poll_ms": 20})
        try:
            await body(pub, sim)
            return pub
        finally:
            at.stop()

    return asyncio.run(main()), sim, broker


def test_subscribe_is_sent_once_per_session():
    """The publisher re-subscribes its topics after every reconnect; a caller that subscribes again
    on each connect (the telelogger does) must not make the module send a second SUBSCRIBE."""

    async def body(pub, sim):
        await pub.subscribe("dev/sub1/cmd", 1)  # connects first, then subscribes (once)
        await pub.subscribe("dev/sub1/cmd", 1)
        assert sim.counters["by_name"]["+CMQTTSUB"] == 1
        sim.connlost(0, 1)
        await pub.publish("dev/sub1/data", b"x", 1)  # reconnects and re-subscribes
        await pub.subscribe("dev/sub1/cmd", 1)
        assert sim.counters["by_name"]["+CMQTTSUB"] == 2
        await pub.subscribe("dev/sub1/cmd", 0)  # another QoS is a new subscription
        assert sim.counters["by_name"]["+CMQTTSUB"] == 3

    _with_local_pub("sub1", body)


def test_concurrent_publishes_after_a_silent_drop_connect_once():
    """Two tasks find the session gone (error 11, no URC) at the same time: one CONNECT goes out,
    the other task waits for it; a second CONNECT would be refused with 19 (client is used).
    Seen in the MicroPython fault soak (sim.py --faults)."""

    async def body(pub, sim):
        await pub.connect()
        assert sim.drop_silently(0)
        await asyncio.gather(pub.publish("dev/cc1/a", b"1", 1), pub.publish("dev/cc1/b", b"2", 1))

    pub, sim, broker = _with_local_pub("cc1", body)
    assert sim.counters["by_name"]["+CMQTTCONNECT"] == 2, sim.counters["by_name"]  # first + one reconnect
    assert pub.stats["reconnects"] == 1 and pub.stats["published"] == 2
    assert sorted(m[0] for m in broker.messages) == [b"dev/cc1/a", b"dev/cc1/b"], broker.messages


# Heap for the whole firmware MQTT stack under the unix port: it is 64-bit (pointers and objects
# twice the ESP32's), and the stack is loaded as bytecode into RAM (on the board it is frozen).
MP_E2E_HEAP = os.environ.get("MP_E2E_HEAPSIZE", "160K")


@pytest.mark.micropython
def test_cmqtt_e2e_mp_1000_with_connlost_every_100(mbroker):
    """The issue's 'done when': under MicroPython, 1,000 messages through the pty simulator to
    mosquitto, a paho subscriber receives every one in order, CONNLOST injected every 100."""
    import subprocess

    n = 1000
    topic = "e2e/mp/data"
    sim = Sim7600(powered=True, time_scale=SCALE, seed=2)
    pty = SimPty(sim)
    sub = Sub(mbroker.port, "e2e/mp/#")
    stop = threading.Event()
    injected = []

    def injector():
        nxt = 100
        while not stop.is_set():
            if sim.counters["published"] >= nxt:
                sim.connlost(0, 1)
                injected.append(sim.counters["published"])
                nxt += 100
            time.sleep(0.002)

    th = threading.Thread(target=injector, daemon=True)
    th.start()
    script = os.path.join(ROOT, "host_tests", "mp", "scripts", "e2e_publish.py")
    p = spawn_mp(script, [pty.path, mbroker.port, n, topic], heap=MP_E2E_HEAP, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=240)
    finally:
        stop.set()
        if p.poll() is None:
            p.kill()
        pty.close()
    got = sub.take_until(lambda o: len(set(seqs(o, topic))) >= n, timeout=30)
    sub.close()
    assert p.returncode == 0, out[-4000:]
    assert "DONE published=%d" % n in out, out[-4000:]
    check_every_one_in_order(seqs(got, topic), n)
    assert len(injected) >= 9, injected
    line = [ln for ln in out.splitlines() if ln.startswith("DONE")][0]
    reconnects = int(line.split("reconnects=")[1].split()[0])
    assert reconnects >= len(injected) - 1
    cms = [ln for ln in out.splitlines() if ln.startswith("CONNECT_MS")]
    print("\n%s (simulated at time_scale %s); %s" % (cms[0] if cms else "", SCALE, line))


async def mqtt_heartbeat(modem_stream, cfg, clock=None, count=1, topic=None, payload=None, log=None):
    """(Moved here from net/cellular.py: only this test used it.) Bring up the modem on `modem_stream` (a
    core.stream stream: SerialPath to a real SIM7600 or a simulator pty), connect with `cfg`
    (the telelogger config dict: device_id, topic_prefix, broker{host,port,tls,keepalive,
    clean_session}, cellular{apn,sim_pin,ssl_ctx}, mqtt_user/mqtt_pass, certs{ca,cert,key} as
    bytes), publish `count` heartbeats to <prefix>/<id>/status and disconnect.
    Returns the publisher's stats dict."""
    at = ATEngine(modem_stream, clock)
    at.start()
    try:
        pub = NC.from_config(at, cfg, clock, log=log)
        await pub.connect()
        dev = cfg.get("device_id", "freematics")
        t = topic or "%s/%s/status" % (cfg.get("topic_prefix", "freematics"), dev)
        for i in range(count):
            p = payload if payload is not None else ('{"heartbeat":%d}' % i)
            await pub.publish(t, p, 1)
        await pub.disconnect()
        st = dict(pub.stats)
        st["modem"] = pub.modem.info
        return st
    finally:
        at.stop()


def test_mqtt_heartbeat_from_config(mbroker):
    """net.cellular.from_config end to end: bring-up, connect, three publishes, disconnect."""
    sim = Sim7600(powered=True, time_scale=SCALE)
    sub = Sub(mbroker.port, "fleet/+/status")
    cfg = {"device_id": "hb1", "topic_prefix": "fleet", "broker": {"host": "127.0.0.1", "port": mbroker.port, "tls": False},
           "cellular": {"apn": "internet"}}
    st = asyncio.run(mqtt_heartbeat(SimStream(sim), cfg, Clock(), count=3))
    got = sub.take_until(lambda o: len(o) >= 3, timeout=20)
    sub.close()
    assert st["published"] == 3 and st["modem"]["model"] == "SIMCOM_SIM7600E"
    assert [p for t, p in got] == [b'{"heartbeat":%d}' % i for i in range(3)]
    assert all(t == "fleet/hb1/status" for t, p in got)


def _bring_up(sim, cfg):
    from modem.sim7600 import Sim7600 as Modem

    async def main():
        at = ATEngine(SimStream(sim), poll_ms=1)
        at.start()
        try:
            m = Modem(at, Clock(), dict({"poll_ms": 20}, **cfg))
            await m.bring_up()
            return m
        finally:
            at.stop()

    return asyncio.run(main())


def test_bring_up_with_pin_through_boot_urcs():
    m = _bring_up(Sim7600(powered=True, time_scale=SCALE, sim_pin="1234"), {"sim_pin": "1234", "apn": "internet"})
    assert m.info["sim"] == "READY" and m.info["signal_dbm"] == -73 and m.revision


def test_registration_waits_on_the_modules_urcs():
    """Registration 600 ms after the SIM is ready: the driver enables +CGREG URCs and waits on them
    (re-query pause 60 s), so it queries once before and once after the URC instead of every poll_ms."""
    sim = Sim7600(powered=True, time_scale=SCALE, delays={"register": 60000})
    m = _bring_up(sim, {"reg_poll_ms": 60000})
    assert m.info["reg_urc"][1] in (1, 5), m.info
    n = sim.counters["by_name"]
    assert n["+CGREG"] == 3 and n["+CEREG"] == 3, n  # =1, a query before and one after the URC


def test_bring_up_denied_and_missing_pin_are_clear():
    from modem.nettime import parse_cclk
    from modem.sim7600 import ModemError, csq_to_dbm

    with pytest.raises(ModemError, match="denied") as e:
        _bring_up(Sim7600(powered=True, time_scale=SCALE, network="denied"), {})
    assert e.value.kind == "reg_denied"
    with pytest.raises(ModemError, match="sim_pin") as e:
        _bring_up(Sim7600(powered=True, time_scale=SCALE, sim_pin="1234"), {})
    assert e.value.kind == "sim"
    with pytest.raises(ModemError, match="not registered after 300 ms") as e:
        _bring_up(Sim7600(powered=True, time_scale=SCALE, network="none"), {"reg_timeout_ms": 300})
    assert e.value.kind == "reg_timeout"
    assert csq_to_dbm(0) == -113 and csq_to_dbm(31) == -51 and csq_to_dbm(99) is None
    assert parse_cclk('"20/08/06,11:50:12+40"') == (2020, 8, 6, 11, 50, 12, 40)
    assert parse_cclk('"21/01/02,03:04:05-08"')[6] == -8
    from core.errors import forget

    forget("modem.nettime")  # imported per call by the firmware: a test of this worker checks it is not left loaded
