"""telelogger.app wiring: transport 'wifi' (net.wifi.WifiPublisher with the board's WLAN), the
boards' wlan(), and the GNSS fallback for boards without a GNSS UART (the ONE+).

These tests are about the wiring (which publisher, which WLAN, which GNSS source), not MQTT, so a TEST
DOUBLE named `umqtt.simple` is put into sys.modules: `MemoryClient`, the MQTTClient calls WifiPublisher
makes, recorded in memory. It is not umqtt code and exists only in this test. The real umqtt.simple (the
micropython-lib package `make venv` fetches) against a real mosquitto: test_wifi_umqtt.py.
"""
import asyncio
import os
import sys
import types

import pytest

from board import BoardError, load_board
from board.esp32 import Board
from board.host import HostBoard
from gnss.sources import CoprocGnss, ModemGnss
from net.wifi import WifiPublisher
from telelogger import app, assembly, config, encode, wifiboot
from test_wifi import FakeWlan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _desc(name="oneplus-b", **gnss):
    d = load_board(os.path.join(ROOT, "boards", name + ".json"))
    d["gnss"] = dict(d["gnss"], **gnss)
    return d


class MemoryClient:
    """TEST DOUBLE for umqtt.simple.MQTTClient: records what the publisher does."""

    instances = []

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None):
        self.args = (client_id, server, port, user, password, keepalive)
        self.ssl = ssl
        self.calls = []
        self.published = []
        self.sock = self
        MemoryClient.instances.append(self)

    def close(self):
        pass

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, *a):
        self.calls.append(("will",) + a)

    def connect(self, clean_session=True):
        self.calls.append(("connect", clean_session))
        return False

    def publish(self, topic, msg, retain=False, qos=0):
        self.published.append((topic, bytes(msg), qos))

    def subscribe(self, topic, qos=0):
        self.calls.append(("subscribe", topic, qos))

    def check_msg(self):
        return None

    def ping(self):
        pass

    def disconnect(self):
        self.calls.append(("disconnect",))


@pytest.fixture
def umqtt_double(monkeypatch):
    pkg = types.ModuleType("umqtt")
    mod = types.ModuleType("umqtt.simple")
    mod.MQTTClient = MemoryClient
    pkg.simple = mod
    monkeypatch.setitem(sys.modules, "umqtt", pkg)
    monkeypatch.setitem(sys.modules, "umqtt.simple", mod)
    MemoryClient.instances = []
    return mod


class Pty:
    """A serial path for a HostBoard role nothing answers on (the wiring only opens it)."""

    def __init__(self):
        self.m, self.s = os.openpty()
        self.path = os.ttyname(self.s)

    def close(self):
        os.close(self.m)
        os.close(self.s)


def _wifi_cfg(port=1883, **extra):
    c = {"transport": "wifi", "broker": {"host": "broker.test", "port": port, "tls": False, "keepalive": 45},
         "obd": {"enabled": False}, "gnss": {"source": "none"},
         "secrets": {"wifi_ssid": "car", "wifi_password": "pw", "mqtt_user": "u", "mqtt_pass": "p"}}
    c.update(extra)
    return config.validate(c)


def test_wifi_transport_publishes_through_the_boards_wlan(tmp_path, umqtt_double):
    wlan = FakeWlan()
    board = HostBoard(_desc(), wlan=wlan)  # no modem path: the WiFi build must not open the modem

    async def main():
        sys.modules.pop("telelogger.wifiboot", None)
        t, at = await app.assemble(board, _wifi_cfg(), store_root=str(tmp_path))
        assert at is None and t.modem is None
        assert not hasattr(t, "cfg") and t.dtc_ms is None  # the values it reads, not the config (obd off)
        assert isinstance(t.pub, WifiPublisher)
        assert "telelogger.wifiboot" not in sys.modules  # boot only: dropped after building the publisher
        await t.connect()
        c = MemoryClient.instances[-1]
        assert wlan.joined == ("car", "pw") and wlan.is_active
        assert c.args == (t.device_id.encode(), "broker.test", 1883, "u", "p", 45) and c.ssl is None
        assert ("subscribe", t.t_cmd.encode(), 1) in c.calls
        t.sample(0x24, 12.5)
        seq = t.build_record()
        assert await t.send_batch() == 1
        topic, payload, qos = c.published[-1]
        assert topic == t.t_data.encode() and qos == 1
        d = encode.decode_batch(payload)
        assert d["dev"] == t.device_id and d["recs"][0]["seq"] == seq
        assert t.store.pending() == 0  # acked after the publish returned
        await t.pub.disconnect()
        t.store.close()

    asyncio.run(main())


def test_wifi_join_failure_is_bounded_and_names_the_network(tmp_path, umqtt_double):
    board = HostBoard(_desc(), wlan=FakeWlan(joins_after=None))

    async def main():
        t, _ = await app.assemble(board, _wifi_cfg(), store_root=str(tmp_path))
        t.pub.wifi_timeout_ms = 30
        t.pub.max_attempts = 1
        with pytest.raises(Exception) as ei:
            await t.connect()
        t.store.close()
        return ei.value

    e = asyncio.run(main())
    assert "could not join WiFi 'car'" in str(e)
    assert not MemoryClient.instances  # no MQTT attempt without the network


def test_wifi_tls_context_from_certs(tmp_path, umqtt_double):
    import ssl

    from net.wifi import WifiError

    board = HostBoard(_desc())  # host networking: no WLAN object

    async def main(cfg):
        t, _ = await app.assemble(board, cfg, store_root=str(tmp_path))
        t.store.close()
        return t.pub

    # tls without a CA is refused: by the validator, and again by the transport for a config that
    # did not come through it
    with pytest.raises(config.ConfigError) as ce:
        _wifi_cfg(broker={"host": "broker.test", "tls": True})
    assert "certs.ca" in str(ce.value) and "tls_verify" in str(ce.value)
    with pytest.raises(WifiError) as ei:
        wifiboot._tls_context({}, True)
    assert "certs.ca" in str(ei.value) and "tls_verify" in str(ei.value)
    # ... unless the config opts out explicitly (warned)
    pub = asyncio.run(main(_wifi_cfg(broker={"host": "broker.test", "tls": True, "tls_verify": False})))
    assert pub.wlan is None and pub.port == 8883
    assert isinstance(pub.ssl, ssl.SSLContext) and pub.ssl.verify_mode == ssl.CERT_NONE
    assert "net.wifi_tls" not in sys.modules  # boot-only: dropped after use
    with pytest.raises(OSError):  # certs.ca is a path on the device's file system: it is read
        wifiboot._tls_context({"ca": str(tmp_path / "missing-ca.pem")})


def test_esp32_board_wlan_is_the_active_station_interface():
    class FakeNetwork:
        STA_IF = 0
        AP_IF = 1
        made = []

        class WLAN(FakeWlan):
            def __init__(self, iface):
                FakeWlan.__init__(self)
                self.iface = iface
                FakeNetwork.made.append(self)

    b = Board(_desc(), machine=object(), network=FakeNetwork)
    w = b.wlan()
    assert w.iface == FakeNetwork.STA_IF and w.is_active and w.joined is None
    assert b.wlan() is w and len(FakeNetwork.made) == 1
    # a firmware without the network module: a clear error, not an AttributeError later
    sys.modules["network"] = None  # makes `import network` raise ImportError
    try:
        with pytest.raises(BoardError) as ei:
            Board(_desc(), machine=object()).wlan()
    finally:
        del sys.modules["network"]
    assert "no `network` module" in str(ei.value)


def test_gnss_uart_per_board():
    assert not Board(_desc(), machine=object()).gnss_uart()  # ONE+: uart null
    assert Board(_desc(uart=2), machine=object()).gnss_uart()
    assert not HostBoard(_desc(uart=2)).gnss_uart()  # host: only a --gps path counts
    assert HostBoard(_desc(), gps="/dev/null").gnss_uart()


def test_gnss_fallback_without_a_gnss_uart():
    one = Board(_desc(), machine=object())
    cell = config.validate({}, False)
    assert cell["gnss"]["source"] == "uart"
    src, note = assembly.gnss_source(one, cell)
    assert src == "modem" and "no GNSS UART" in note and "modem" in note
    src, note = assembly.gnss_source(one, _wifi_cfg(gnss={"source": "uart"}))
    assert src == "coproc" and "co-processor" in note
    # explicit choices and boards with a GNSS UART are left alone
    for s in ("modem", "coproc", "none"):
        assert assembly.gnss_source(one, config.validate({"gnss": {"source": s}}, False)) == (s, None)
    assert assembly.gnss_source(Board(_desc(uart=2), machine=object()), cell) == ("uart", None)


def test_one_plus_cellular_build_uses_the_modems_gnss(tmp_path, capsys):
    modem = Pty()
    board = HostBoard(_desc(), modem=modem.path)  # no --gps: like the ONE+, no GNSS UART
    cfg = config.validate({"obd": {"enabled": False}}, False)

    async def main():
        sys.modules.pop("telelogger.wifiboot", None)
        t, at = await app.assemble(board, cfg, store_root=str(tmp_path))
        try:
            assert at is not None and t.modem is not None
            assert isinstance(t.gnss, ModemGnss) and t.gnss.at is at
            assert "telelogger.wifiboot" not in sys.modules  # a cellular boot never loads the WiFi half
        finally:
            at.stop()
            t.store.close()
            board.close()

    try:
        asyncio.run(main())
    finally:
        modem.close()
    assert "no GNSS UART: using the modem's GNSS" in capsys.readouterr().out


def test_one_plus_wifi_build_uses_the_coprocessors_gnss(tmp_path, capsys, umqtt_double):
    obd = Pty()
    board = HostBoard(_desc(), obd=obd.path, wlan=FakeWlan())
    cfg = _wifi_cfg(obd={"enabled": True}, gnss={"source": "uart"})

    async def main():
        t, at = await app.assemble(board, cfg, store_root=str(tmp_path))
        try:
            assert at is None and isinstance(t.pub, WifiPublisher)
            assert isinstance(t.gnss, CoprocGnss)
        finally:
            t.store.close()
            board.close()

    try:
        asyncio.run(main())
    finally:
        obd.close()
    assert "using the co-processor's GNSS" in capsys.readouterr().out
