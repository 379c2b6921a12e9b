"""net.wifi under MicroPython with the real umqtt.simple (the copy `make venv` fetched into
.venv/mip-cache, see scripts/mip_index.py) against a broker that stalls: every socket operation
after CONNECT is bounded by io_timeout_ms, so a stalling broker costs bounded time and ends in
NotConnected instead of freezing the loop (issue 11 §10). And broker.tls without certs.ca is refused."""
import os
import socket
import ssl
import sys
import threading
import time

import pytest

from mphost import ROOT, run_mp

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import mip_index  # noqa: E402

from net import wifi as W  # noqa: E402
from net import wifi_tls as WT  # noqa: E402

SCRIPT = r"""
import sys, time, asyncio
from net.wifi import WifiPublisher
from net.publisher import NotConnected

async def go(port, mode):
    p = WifiPublisher("stall1", "127.0.0.1", port, io_timeout_ms=400, max_attempts=2, max_resends=1, backoff_ms=10, poll_ms=20)
    t0 = time.ticks_ms()
    try:
        await p.connect()
        print("CONNECTED", type(p.client.sock).__name__)
        await p.publish("t/stall", b"x", 1)
        print("PUBLISHED")
    except NotConnected as e:
        print("NOTCONNECTED", time.ticks_diff(time.ticks_ms(), t0), e)
    await p.disconnect()

asyncio.run(go(int(sys.argv[1]), sys.argv[2]))
"""


class StallingBroker:
    """Accepts MQTT connections, answers CONNECT with CONNACK, then reads and never answers."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._client, args=(c,), daemon=True).start()

    def _client(self, c):
        try:
            first = c.recv(1)
            if first and first[0] == 0x10:
                c.sendall(b"\x20\x02\x00\x00")  # CONNACK accepted
            while not self.stop and c.recv(4096):
                pass  # PUBLISH read, never PUBACKed
        except OSError:
            pass

    def close(self):
        self.stop = True
        self.srv.close()
        for c in self.conns:
            c.close()


def _umqtt_path():
    files = mip_index._files(os.path.join(mip_index.CACHE, mip_index.PACKAGE))
    if not files:
        pytest.skip("umqtt.simple not installed: not fetched (make venv puts it in %s)" % mip_index.CACHE)
    return os.path.join(mip_index.CACHE, mip_index.PACKAGE)


def test_stalling_broker_costs_bounded_time_on_real_umqtt(tmp_path):
    path = _umqtt_path()
    script = tmp_path / "stall.py"
    script.write_text(SCRIPT)
    b = StallingBroker()
    try:
        t0 = time.time()
        out = run_mp(str(script), [b.port, "puback"], heap="128K", timeout=60, extra_path=[path])
        took = time.time() - t0
    finally:
        b.close()
    assert "CONNECTED TimedSocket" in out, out
    assert "PUBLISHED" not in out and "NOTCONNECTED" in out, out
    # publish + 1 resend (each: a reconnect and a PUBACK wait of 0.4 s) — seconds, not for ever
    assert took < 20, (took, out)
    assert "MQTT over WiFi" in out, out


class TimeoutClient:
    """umqtt.simple >= 1.5 shape: connect(clean_session, timeout)."""

    def __init__(self, *a, **kw):
        self.sock = None
        self.timeout = "unset"

    def set_callback(self, f):
        pass

    def connect(self, clean_session=True, timeout=None):
        self.timeout = timeout
        return False


def test_connect_gets_the_io_timeout_where_umqtt_takes_one():
    import asyncio

    clients = []

    def factory(pub):
        clients.append(TimeoutClient())
        return clients[-1]

    async def go():
        p = W.WifiPublisher("d", "h", 1883, client_factory=factory, io_timeout_ms=2500)
        await p.connect()
        await p.disconnect()

    asyncio.run(go())
    assert clients[0].timeout == 2.5


def test_tls_without_ca_is_refused_unless_verify_is_off(tmp_path):
    with pytest.raises(W.WifiError, match="certs.ca") as e:
        WT.tls_context({}, verify=True)
    assert "broker.tls_verify: false" in str(e.value)
    warned = []

    class Log:
        def warn(self, fmt, *a):
            warned.append(fmt % a)

    ctx = WT.tls_context({"ca": ""}, verify=False, log=Log())
    assert ctx.verify_mode == ssl.CERT_NONE and warned and "tls_verify is false" in warned[0]


def test_tls_with_ca_verifies_server_and_host_name(tmp_path):
    from peers.broker import make_aws_style_certs

    certs = make_aws_style_certs(str(tmp_path / "c"))
    ctx = WT.tls_context({"ca": certs.ca})
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname is True
    assert ctx.cert_store_stats()["x509_ca"] == 1


SCRIPT_OLD = r"""
import asyncio
from net.wifi import WifiPublisher, WifiError

async def go():
    p = WifiPublisher("tls1", "127.0.0.1", 1, ssl=object(), max_attempts=3, backoff_ms=10)
    try:
        await p.connect()
    except WifiError as e:
        print("REFUSED", e)

asyncio.run(go())
"""


def test_umqtt_that_ignores_the_ssl_context_is_refused(tmp_path):
    path = _umqtt_path()
    with open(os.path.join(path, "VERSION")) as f:
        if not f.read().startswith("1.3"):
            pytest.skip("the fetched umqtt.simple is not 1.3.x")
    script = tmp_path / "old.py"
    script.write_text(SCRIPT_OLD)
    out = run_mp(str(script), heap="128K", timeout=60, extra_path=[path])
    assert "REFUSED broker.tls: this umqtt.simple (1.3.x) ignores the SSL context" in out, out


# ------------------------------------------- an oversized retained command on the real umqtt.simple

SCRIPT_RX = r"""
import sys, time, asyncio, gc
from net.wifi import WifiPublisher

class Log:
    def warn(self, fmt, *a):
        print("WARN", fmt % a)

got = []

async def go(port):
    p = WifiPublisher("rx1", "127.0.0.1", port, io_timeout_ms=3000, max_attempts=2, backoff_ms=50, poll_ms=20, log=Log())
    p.on_message(lambda t, m: got.append((t, len(m), bytes(m[:8]))))
    await p.connect()
    await p.subscribe("fm/rx1/cmd", 1)
    t0 = time.ticks_ms()
    while p.stats["rx_dropped"] == 0 and time.ticks_diff(time.ticks_ms(), t0) < 5000:
        await asyncio.sleep_ms(20)
    await p.publish("fm/rx1/cmd", b"small-ok", 1)
    t0 = time.ticks_ms()
    while not got and time.ticks_diff(time.ticks_ms(), t0) < 5000:
        await asyncio.sleep_ms(20)
    print("GOT", got)
    print("STATS", p.stats["rx_dropped"], p.stats["errors"], p.stats["connects"], p.stats["last_error"])
    await p.disconnect()

asyncio.run(go(int(sys.argv[1])))
"""

BIG = 60000


@pytest.fixture
def retained_broker():
    """mosquitto holding a 60 KB retained message on the device's command topic."""
    paho = pytest.importorskip("paho.mqtt.client")
    from peers.broker import MOSQUITTO, Broker

    if not MOSQUITTO:
        pytest.skip("mosquitto not installed")
    b = Broker().start()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="retainer")
    c.connect("127.0.0.1", b.port)
    c.loop_start()
    c.publish("fm/rx1/cmd", b"B" * BIG, qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    yield b
    b.stop()


def _check_rx(out):
    assert "GOT [('fm/rx1/cmd', 8, b'small-ok')]" in out, out  # the retained one refused, the next delivered
    assert "STATS 1 0 1 None" in out, out  # one refusal, no error, no reconnect
    warns = [ln for ln in out.splitlines() if ln.startswith("WARN")]
    assert len(warns) == 1 and "topic 10 / payload %d bytes" % BIG in warns[0], out
    assert "MemoryError" not in out and "memory allocation failed" not in out, out


def test_oversized_retained_command_is_refused_on_real_umqtt_micropython(tmp_path, retained_broker):
    """At a 64K heap a 60 KB message cannot be allocated (before: MemoryError in umqtt's wait_msg,
    the link dropped and re-made, the retained message again: a reconnect loop)."""
    path = _umqtt_path()
    script = tmp_path / "rx.py"
    script.write_text(SCRIPT_RX)
    out = run_mp(str(script), [retained_broker.port], heap="64K", timeout=60, extra_path=[path])
    _check_rx(out)


class _MpSocket:
    """MicroPython's socket stream API (read/write/setblocking/settimeout) over a CPython socket,
    so the real umqtt.simple runs on CPython: read(n) returns n bytes (fewer only at EOF), None
    when non-blocking and nothing is there."""

    def __init__(self, *a):
        self.s = socket.socket()

    def connect(self, addr):
        self.s.connect(addr)

    def settimeout(self, t):
        self.s.settimeout(t)

    def setblocking(self, flag):
        self.s.setblocking(flag)

    def read(self, n):
        out = b""
        while len(out) < n:
            try:
                k = self.s.recv(n - len(out))
            except BlockingIOError:
                if not out:
                    return None
                self.s.settimeout(5)
                continue
            if not k:
                break
            out += k
        return out

    def write(self, b, n=None):
        b = bytes(b if n is None else b[:n])
        self.s.sendall(b)
        return len(b)

    def close(self):
        self.s.close()


@pytest.fixture
def cpython_umqtt(monkeypatch):
    """The fetched umqtt.simple imported on CPython with usocket/ustruct/ubinascii shims."""
    import binascii
    import importlib.util
    import struct
    import types

    path = _umqtt_path()
    us = types.ModuleType("usocket")
    us.socket = _MpSocket
    us.getaddrinfo = socket.getaddrinfo
    monkeypatch.setitem(sys.modules, "usocket", us)
    monkeypatch.setitem(sys.modules, "ustruct", struct)
    monkeypatch.setitem(sys.modules, "ubinascii", binascii)
    spec = importlib.util.spec_from_file_location("umqtt.simple", os.path.join(path, "umqtt", "simple.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pkg = types.ModuleType("umqtt")
    pkg.simple = mod
    monkeypatch.setitem(sys.modules, "umqtt", pkg)
    monkeypatch.setitem(sys.modules, "umqtt.simple", mod)
    return mod


def test_oversized_retained_command_is_refused_on_real_umqtt_cpython(retained_broker, cpython_umqtt, capsys):
    import asyncio

    import core.compat as compat

    class Log:
        def warn(self, fmt, *a):
            print("WARN", fmt % a)

    got = []
    reads = []

    async def go(port):
        p = W.WifiPublisher("rx1", "127.0.0.1", port, io_timeout_ms=3000, max_attempts=2, backoff_ms=50, poll_ms=20, log=Log())
        p.on_message(lambda t, m: got.append((t, len(m), bytes(m[:8]))))
        await p.connect()
        sock = p.client.sock.sock
        orig = sock.read
        sock.read = lambda n: (reads.append(n), orig(n))[1]
        await p.subscribe("fm/rx1/cmd", 1)
        t0 = compat.ticks_ms()
        while p.stats["rx_dropped"] == 0 and compat.ticks_diff(compat.ticks_ms(), t0) < 5000:
            await asyncio.sleep(0.02)
        await p.publish("fm/rx1/cmd", b"small-ok", 1)
        t0 = compat.ticks_ms()
        while not got and compat.ticks_diff(compat.ticks_ms(), t0) < 5000:
            await asyncio.sleep(0.02)
        print("GOT", got)
        print("STATS", p.stats["rx_dropped"], p.stats["errors"], p.stats["connects"], p.stats["last_error"])
        await p.disconnect()

    asyncio.run(go(retained_broker.port))
    _check_rx(capsys.readouterr().out)
    assert max(reads) <= 256, max(reads)  # the 60 KB were read past in pieces


def test_tls_context_without_a_certs_section(tmp_path):
    """certs absent (None) is 'no CA': refused, or CERT_NONE with tls_verify false (it used to crash)."""
    with pytest.raises(W.WifiError, match="certs.ca"):
        WT.tls_context(None, verify=True)
    assert WT.tls_context(None, verify=False).verify_mode == ssl.CERT_NONE
