"""MQTTS shaped like AWS IoT through the strict simulator: CA + device certificate + key uploaded
with AT+CCERTDOWN (exact byte counts), authmode 2, SNI on, to a mosquitto TLS listener with
require_certificate; plus the failures a fleet engineer meets (truncated upload, old firmware)."""
import asyncio
import io
import os
import shutil
import tempfile

import pytest

from at.engine import ATEngine
from core.compat import Clock
from modem import cmqtt as C
from modem import codes
from modem import tls as T
from net import cellular as NC
from peers.broker import AWS_HOST, Broker, make_aws_style_certs
from peers.sim7600 import Sim7600, SimStream

SCALE = 0.01


@pytest.fixture(scope="module")
def tls_broker():
    # mosquitto started as root drops to its own user: the certificates must be readable by it
    # (pytest's tmp dirs are 0700), so they live in a world-readable temp dir here.
    d = tempfile.mkdtemp(prefix="cmqtt-tls-")
    certs = make_aws_style_certs(os.path.join(d, "c"))
    for root in (d, certs.dir):
        os.chmod(root, 0o755)
    for f in os.listdir(certs.dir):
        os.chmod(os.path.join(certs.dir, f), 0o644)
    b = Broker(tls=dict(cafile=certs.ca, certfile=certs.server_cert, keyfile=certs.server_key))
    b.start()
    b.certs = certs
    yield b
    b.stop()
    shutil.rmtree(d, ignore_errors=True)


def _certs(aws):
    return {"ca": aws.read("ca"), "cert": aws.read("cert"), "key": aws.read("key")}


def _run(sim, fn):
    async def main():
        at = ATEngine(SimStream(sim), poll_ms=1)
        at.start()
        try:
            return await fn(at)
        finally:
            at.stop()

    return asyncio.run(main())


def _pub(at, broker, certs, **kw):
    return NC.CellularPublisher(at, Clock(), client_id="thing-1", host=AWS_HOST, port=8883, tls=True, certs=certs,
                                backoff_ms=10, max_attempts=3, modem_cfg={"poll_ms": 20}, **kw)


def test_mutual_tls_aws_shaped_connect_and_publish(tls_broker):
    log = io.StringIO()
    sim = Sim7600(powered=True, time_scale=SCALE, broker_map={"*": ("127.0.0.1", tls_broker.port)}, log=log)
    certs = _certs(tls_broker.certs)

    async def go(at):
        pub = _pub(at, tls_broker, certs)
        await pub.connect()
        for i in range(5):
            await pub.publish("dt/thing-1/data", b'{"n":%d}' % i, 1)
        sim.connlost(0, 2)  # reconnect must re-issue AT+CMQTTSSLCFG (DISC/failed connects clear it)
        await pub.publish("dt/thing-1/data", b'{"n":5}', 1)
        # a second provisioning finds the same hashed names and uploads nothing (the publisher makes
        # its TLS driver per use: a driver of its own here)
        tls = T.Tls(at, pub.modem)
        names = await tls.provision(**certs)
        return pub, names, tls

    pub, names, tls = _run(sim, go)
    assert sorted(sim.certs) == sorted(names.values())
    for role in ("ca", "cert", "key"):
        assert sim.certs[names[role]] == certs[role]  # exact bytes, exact length
    assert tls.uploaded == []
    text = log.getvalue()
    assert 'AT+CSSLCFG="authmode",0,2' in text and 'AT+CSSLCFG="enableSNI",0,1' in text
    assert text.count("AT+CMQTTSSLCFG=0,0") >= 2
    assert 'AT+CMQTTACCQ=0,"thing-1",1,4' in text
    assert [p[2] for p in sim.published] == [b'{"n":%d}' % i for i in range(6)]


def test_truncated_key_upload_surfaces_ssl_session_failed_by_name(tls_broker):
    sim = Sim7600(powered=True, time_scale=SCALE, broker_map={"*": ("127.0.0.1", tls_broker.port)})
    certs = _certs(tls_broker.certs)
    certs["key"] = certs["key"][: len(certs["key"]) // 2]  # a cut-off upload

    async def go(at):
        pub = _pub(at, tls_broker, certs)
        # the firmware's own PEM check would refuse this before sending: bypass it, as a modem
        # that got a short file from another tool would have it
        await pub.modem.bring_up()
        pub.cert_names = await T.Tls(at, pub.modem).provision(check=False, **certs)
        pub.certs = {}  # already on the module
        try:
            await pub.connect()
        except C.CmqttError as e:
            return e
        raise AssertionError("connected with a truncated key")

    e = _run(sim, go)
    assert type(e) is C.CmqttError and C.is_tls(e.code)
    assert e.code == 34 and "open SSL session failed" in str(e) and "SslSessionFailed" in str(e)
    assert e.hint and "certificate" in e.hint


def test_pem_check_refuses_truncated_file_before_upload(tls_broker):
    key = tls_broker.certs.read("key")
    with pytest.raises(T.CertUploadError, match="truncated"):
        T.check_pem("key", key[:-40])
    T.check_pem("key", key)


def test_firmware_without_ssl_fails_with_the_fix():
    sim = Sim7600(powered=True, time_scale=SCALE, firmware=codes.FIRMWARE_NO_SSL[0])
    log = io.StringIO()
    sim._logf = log

    async def go(at):
        pub = NC.CellularPublisher(at, Clock(), host="example.com", port=8883, tls=True, modem_cfg={"poll_ms": 20},
                                   certs={"ca": b"-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n"})
        try:
            await pub.connect()
        except T.TlsUnsupported as e:
            return e

    e = _run(sim, go)
    assert e is not None and e.kind == "unsupported"
    assert codes.FIRMWARE_NO_SSL[0] in str(e) and codes.FIRMWARE_NO_SSL_FIX in str(e)
    sent = _sent(log.getvalue())
    assert "AT+CGMR" in sent  # the revision was read; then nothing of TLS or MQTT was sent
    assert not [c for c in sent if c.startswith(("AT+CSSLCFG", "AT+CCERT", "AT+CMQTT"))], sent


def _sent(log_text):
    """The commands the host sent, in order, from the simulator's SENT/RECV transcript."""
    out = []
    for block in log_text.split("=== SENT@")[1:]:
        body = block.split("\n", 1)[1].split("\n==================", 1)[0]
        out.extend(ln.strip() for ln in body.splitlines() if ln.strip().startswith("AT"))
    return out


UNKNOWN_FW = "LE20B09SIM7600X-T"  # in no table: neither the firmware's nor the simulator's


def test_unknown_firmware_refusing_csslcfg_falls_back_to_a_clear_refusal(tls_broker):
    """The real fallback: a revision no table lists, whose AT+CSSLCFG answers ERROR (the seed thread's
    old SIM7600A firmware did exactly that). The firmware cannot know in advance, so it must try, read
    the ERROR as "this firmware has no SSL", stop there (no CONNECT without TLS, no retry loop) and
    say which command, which firmware and what to do; publish refuses with the same reason."""
    assert UNKNOWN_FW not in codes.FIRMWARE_NO_SSL
    log = io.StringIO()
    sim = Sim7600(powered=True, time_scale=SCALE, firmware=UNKNOWN_FW, ssl=False,
                  broker_map={"*": ("127.0.0.1", tls_broker.port)}, log=log)
    certs = _certs(tls_broker.certs)

    async def go(at):
        pub = _pub(at, tls_broker, certs)
        errs = []
        for call in (pub.connect, lambda: pub.publish("dt/thing-1/data", b'{"n":0}', 1)):
            try:
                await call()
            except T.TlsSetupError as e:
                errs.append(e)
            else:
                raise AssertionError("no TLS refusal from %r" % call)
        return pub, errs

    pub, errs = _run(sim, go)
    for e in errs:
        assert e.kind == "unsupported"
        msg = str(e)
        assert 'AT+CSSLCFG="sslversion",0,4 answered ERROR' in msg
        assert "firmware %s" % UNKNOWN_FW in msg  # the revision the module reported (ATI / AT+CGMR)
        assert "upgrade the module firmware" in msg and "WiFi" in msg  # what to do
    assert pub.stats["last_error"] == str(errs[-1]) and pub.stats["connects"] == 0
    assert not pub.connected() and sim.published == []
    sent = _sent(log.getvalue())
    ssl = [c for c in sent if c.startswith("AT+CSSLCFG")]
    # one attempt per call, each stopping at the first refused setting: no retries of a fatal error
    assert ssl == ['AT+CSSLCFG="sslversion",0,4'] * 2, ssl
    # never a session without the TLS the config asked for
    assert not [c for c in sent if c.startswith(("AT+CMQTTSTART", "AT+CMQTTACCQ", "AT+CMQTTCONNECT", "AT+CMQTTPUB"))]


def test_cert_names_are_content_hashes():
    a = T.cert_name("ca", b"x")
    assert a.startswith("ca-") and a.endswith(".pem") and len(a) == len("ca-12345678.pem")
    assert T.cert_name("ca", b"x") == a and T.cert_name("ca", b"y") != a
    assert T._is_scheme_name("ca", a) and not T._is_scheme_name("cert", a) and not T._is_scheme_name("ca", "cacert.pem")
