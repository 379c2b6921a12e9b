# modem.tls over a scripted AT peer (both runtimes): TLS that verifies or refuses, SNI refusal not
# fatal, the set-up module (modem.certs) loaded only while it runs.
import sys

from at.engine import CME, ATError
from modem.tls import Tls, TlsSetupError
from mp_sim7600 import ScriptAT
from mptest import Skip, araises


class Log:
    def __init__(self):
        self.warns = []

    def warn(self, fmt, *args):
        self.warns.append(fmt % args)

    def info(self, fmt, *args):
        pass


def csslcfg(at):
    return [c for c in at.sent if c.startswith("AT+CSSLCFG")]


async def test_tls_without_ca_refuses_naming_certs_ca():
    at = ScriptAT({})
    e = await araises(TlsSetupError, Tls(at).configure(0))
    assert e.kind == "no_ca", e.kind
    assert "certs.ca" in str(e) and "broker.tls_verify: false" in str(e), str(e)
    assert at.sent == []  # nothing configured: no silent authmode 0
    assert "modem.certs" not in sys.modules


async def test_tls_verify_false_runs_authmode_0_with_a_warning_each_time():
    at = ScriptAT({})
    log = Log()
    t = Tls(at, log=log, verify=False)
    assert await t.configure(0) == 0
    assert 'AT+CSSLCFG="authmode",0,0' in at.sent, at.sent
    assert await t.configure(0) == 0
    assert len([w for w in log.warns if "tls_verify is false" in w]) == 2, log.warns
    # an explicit verify=True on the call wins over the constructor's opt-out
    e = await araises(TlsSetupError, t.configure(0, verify=True))
    assert e.kind == "no_ca"


async def test_ca_gives_authmode_1_and_mutual_gives_2():
    at = ScriptAT({})
    t = Tls(at)
    assert await t.configure(1, ca="ca-00000000.pem") == 1
    assert csslcfg(at) == [
        'AT+CSSLCFG="sslversion",1,4', 'AT+CSSLCFG="authmode",1,1', 'AT+CSSLCFG="ignorelocaltime",1,1',
        'AT+CSSLCFG="cacert",1,"ca-00000000.pem"', 'AT+CSSLCFG="enableSNI",1,1',
    ], at.sent
    assert t.sni is True
    assert await t.configure(0, ca="ca-1.pem", cert="cert-1.pem", key="key-1.pem") == 2
    e = await araises(TlsSetupError, t.configure(0, cert="cert-1.pem", key="key-1.pem"))
    assert e.kind == "no_ca" and "certs.ca" in str(e)


async def test_sni_refused_is_a_warning_and_tls_goes_on():
    sni = 'AT+CSSLCFG="enableSNI",0,1'
    at = ScriptAT({sni: ATError(sni, 4, "operation not supported", kind=CME)})
    log = Log()
    t = Tls(at, log=log)
    assert await t.configure(0, ca="ca-1.pem") == 1
    assert t.sni is False and sni in at.sent
    assert any("enableSNI" in w and "without SNI" in w for w in log.warns), log.warns


async def test_other_csslcfg_refusals_stay_fatal_and_sslversion_means_no_ssl():
    c = 'AT+CSSLCFG="cacert",0,"ca-1.pem"'
    e = await araises(TlsSetupError, Tls(ScriptAT({c: ATError(c, 4, "operation not supported", kind=CME)})).configure(0, ca="ca-1.pem"))
    assert e.kind == "config" and "cacert" in str(e)
    c = 'AT+CSSLCFG="sslversion",0,4'
    e = await araises(TlsSetupError, Tls(ScriptAT({c: ATError(c, 4, "operation not supported", kind=CME)})).configure(0, ca="ca-1.pem"))
    assert e.kind == "unsupported"
    assert "modem.certs" not in sys.modules


def test_certs_helpers_read_on_demand():
    import modem.tls as T

    n = T.cert_name("ca", b"x")
    assert n.startswith("ca-") and n.endswith(".pem") and len(n) == len("ca-12345678.pem")
    e = None
    try:
        T.check_pem("key", b"-----BEGIN KEY-----\nAA")
    except T.CertUploadError as x:
        e = x
    assert e is not None and e.kind == "upload" and "truncated" in str(e)
    assert T.AUTH_MUTUAL == 2
    assert "modem.certs" not in sys.modules


async def test_tls_set_up_leaves_no_bytecode_resident():
    if sys.implementation.name != "micropython":
        raise Skip("heap figures are MicroPython's")
    import gc

    from core.errors import forget

    forget("modem.certs")
    t = Tls(ScriptAT({"AT+CCERTLIST": ['+CCERTLIST: "ca-00000000.pem"']}))
    # once first: the names modem.certs interns stay for good (Tls itself holds none of them), and
    # a pool table they may open is no bytecode
    await t.configure(0, ca="ca-00000000.pem")
    await t.list()
    assert "modem.certs" not in sys.modules and "certs" not in sys.modules["modem"].__dict__
    gc.collect()
    a0 = gc.mem_alloc()
    await t.configure(0, ca="ca-00000000.pem")
    await t.list()
    gc.collect()
    grew = gc.mem_alloc() - a0
    print("MPINFO tls set-up left %d bytes" % grew)
    assert grew < 1500, grew  # modem.certs alone is ~4.4 KB of bytecode on 32-bit
