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
        pytest.skip("umqtt.simple not fetched (make venv puts it in %s)" % mip_index.CACHE)
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
