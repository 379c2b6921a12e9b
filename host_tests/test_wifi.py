"""net.wifi.WifiPublisher against a real mosquitto, with a real paho subscriber, through a TEST DOUBLE of umqtt.

The firmware imports `umqtt.simple` (micropython-lib) lazily. This test puts a double named `umqtt.simple` into
sys.modules: `FakeUmqttClient`, the tiny MQTTClient API (connect, publish, subscribe, set_callback, set_last_will,
check_msg, ping, disconnect) implemented over paho, with a kill() hook that breaks the link at a known point. It is
not umqtt code and exists only in this test. The REAL umqtt.simple (the copy `make venv` fetches into
.venv/mip-cache, scripts/mip_index.py) is tested in test_wifi_umqtt.py (CPython and MicroPython, broker restart)
and test_wifi_timeouts.py (a stalling broker).
"""
import asyncio
import queue
import socket
import sys
import time
import types

import paho.mqtt.client as mqtt
import pytest

from net import wifi as W
from net.publisher import NotConnected
from peers.broker import MOSQUITTO, Broker, free_port


@pytest.fixture
def broker():
    if not MOSQUITTO:
        pytest.skip("mosquitto not installed")
    b = Broker().start()
    yield b
    b.stop()


class MQTTException(Exception):
    pass


class FakeUmqttClient:
    """TEST DOUBLE for micropython-lib umqtt.simple.MQTTClient, over paho (blocking calls)."""

    instances = []

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None, ssl_params=None):
        self.args = (client_id, server, port, user, password, keepalive, ssl)
        self._c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id.decode(), clean_session=True)
        if user:
            self._c.username_pw_set(user, password)
        self._cb = None
        self._q = queue.Queue()
        self._connected = False
        self._c.on_message = lambda c, u, m: self._q.put((m.topic.encode(), m.payload))
        self._c.on_disconnect = self._on_disc
        self.sock = self
        self.server, self.port, self.keepalive = server, port, keepalive
        FakeUmqttClient.instances.append(self)

    def _on_disc(self, *a):
        self._connected = False

    def close(self):  # the `.sock.close()` umqtt users call on a dead link
        self._c.loop_stop()

    def set_callback(self, f):
        self._cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self._c.will_set(topic.decode(), msg, qos, retain)

    def connect(self, clean_session=True):
        ev = []
        self._c.on_connect = lambda c, u, f, rc, p: ev.append(rc)
        try:
            self._c.connect(self.server, self.port, self.keepalive or 60)
        except (ConnectionRefusedError, socket.error) as e:
            raise OSError(str(e))
        self._c.loop_start()
        t0 = time.time()
        while not ev:
            if time.time() - t0 > 5:
                raise OSError("no CONNACK")
            time.sleep(0.005)
        if ev[0] != 0:
            raise MQTTException(ev[0])
        self._connected = True
        return False

    def _check(self):
        if not self._connected:
            raise OSError(104, "ECONNRESET")

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        info = self._c.publish(topic.decode(), msg, qos, retain)
        if qos:
            info.wait_for_publish(5)
            if not info.is_published():
                raise OSError("no PUBACK")

    def subscribe(self, topic, qos=0):
        self._check()
        r, mid = self._c.subscribe(topic.decode(), qos)
        if r != 0:
            raise OSError("subscribe failed")

    def check_msg(self):
        self._check()
        while True:
            try:
                t, m = self._q.get_nowait()
            except queue.Empty:
                return None
            self._cb(t, m)

    def ping(self):
        self._check()

    def disconnect(self):
        self._c.disconnect()
        self._c.loop_stop()

    def kill(self):  # test hook: the link breaks under the client
        self._connected = False
        self._c.disconnect()


@pytest.fixture
def umqtt_double(monkeypatch):
    pkg = types.ModuleType("umqtt")
    mod = types.ModuleType("umqtt.simple")
    mod.MQTTClient = FakeUmqttClient
    mod.MQTTException = MQTTException
    pkg.simple = mod
    monkeypatch.setitem(sys.modules, "umqtt", pkg)
    monkeypatch.setitem(sys.modules, "umqtt.simple", mod)
    FakeUmqttClient.instances = []
    return mod


class Sub:
    def __init__(self, port, topic):
        self.got = queue.Queue()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        ready = []
        self.c.on_connect = lambda c, u, f, rc, p: (c.subscribe(topic, 1), ready.append(1))
        self.c.on_subscribe = lambda *a: ready.append(2)
        self.c.on_message = lambda c, u, m: self.got.put((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        t0 = time.time()
        while 2 not in ready and time.time() - t0 < 10:
            time.sleep(0.01)

    def take(self, n, timeout=10):
        out = []
        t0 = time.time()
        while len(out) < n and time.time() - t0 < timeout:
            try:
                out.append(self.got.get(timeout=0.1))
            except queue.Empty:
                pass
        return out

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class FakeWlan:
    """network.WLAN(STA_IF) stand-in: after connect(), joined from the (joins_after+1)-th
    isconnected() poll on; joins_after=None never joins. Also used by test_app_wifi."""

    def __init__(self, joins_after=2):
        self.polls = 0
        self.after = joins_after
        self.joined = None
        self.is_active = False

    def active(self, v=None):
        if v is not None:
            self.is_active = v
        return self.is_active

    def connect(self, ssid, pw):
        self.joined = (ssid, pw)

    def isconnected(self):
        if self.joined is None or self.after is None:
            return False
        self.polls += 1
        return self.polls > self.after


def test_publish_subscribe_reconnect_against_mosquitto(broker, umqtt_double):
    sub = Sub(broker.port, "fleet/#")
    wlan = FakeWlan()
    got = []

    async def main():
        pub = W.WifiPublisher("dev-wifi", "127.0.0.1", broker.port, keepalive=30, wlan=wlan, ssid="car", wifi_password="pw", poll_ms=10)
        pub.on_message(lambda t, p: got.append((t, p)))
        await pub.connect()
        assert wlan.joined == ("car", "pw") and pub.connected()
        assert FakeUmqttClient.instances[-1].args[:3] == (b"dev-wifi", "127.0.0.1", broker.port)
        await pub.subscribe("fleet/dev-wifi/cmd", 1)
        for i in range(20):
            await pub.publish("fleet/dev-wifi/data", b"m%d" % i, 1)
        # the link breaks: the next publish reconnects and resends, and the subscription is renewed
        FakeUmqttClient.instances[-1].kill()
        for i in range(20, 30):
            await pub.publish("fleet/dev-wifi/data", b"m%d" % i, 1)
        assert pub.stats["reconnects"] == 1 and pub.stats["published"] == 30
        sub.c.publish("fleet/dev-wifi/cmd", b"ping\r\n\x00", 1)
        for _ in range(500):
            if got:
                break
            await asyncio.sleep(0.01)
        await pub.disconnect()
        assert not pub.connected()

    asyncio.run(main())
    msgs = sub.take(30 + 1)
    sub.close()
    data = [p for t, p in msgs if t == "fleet/dev-wifi/data"]
    assert data == [b"m%d" % i for i in range(30)]
    assert got == [("fleet/dev-wifi/cmd", b"ping\r\n\x00")]


def test_connect_failure_is_bounded_and_clear(umqtt_double):
    port = free_port()  # nothing listens there

    async def main():
        pub = W.WifiPublisher("dev", "127.0.0.1", port, max_attempts=3, backoff_ms=2)
        try:
            await pub.connect()
        except NotConnected as e:
            return e
        raise AssertionError("connected to nothing")

    e = asyncio.run(main())
    assert "after 3 attempts" in str(e) and str(port) in str(e)


def test_wifi_join_timeout(umqtt_double):
    async def main():
        pub = W.WifiPublisher("dev", "127.0.0.1", 1, wlan=FakeWlan(joins_after=None), ssid="x", wifi_timeout_ms=50, max_attempts=1)
        try:
            await pub.connect()
        except NotConnected as e:
            return e

    e = asyncio.run(main())
    assert "could not join WiFi 'x'" in str(e)
