# mp-heap: 96K  (the TLS set-up of a CellularPublisher: cellular_setup + modem.tls/certs over a scripted AT peer)
# net.cellular_setup.tls on both runtimes, for modem firmware without SSL: a revision the table lists is refused
# before anything is sent (no certificate upload to a module that cannot use it); a revision no table knows finds
# out from its ERROR to the first AT+CSSLCFG, which names the command, the revision and the fix.
import sys

from at.engine import ERROR, ATError
from modem.sim7600 import Sim7600
from modem.errors import TlsSetupError
from mp_sim7600 import ScriptAT
from mptest import araises

CA = b"-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n"
SSLVERSION = 'AT+CSSLCFG="sslversion",0,4'


class CertAT(ScriptAT):
    """ScriptAT whose AT+CCERTLIST lists what AT+CCERTDOWN stored."""

    def __init__(self, replies):
        ScriptAT.__init__(self, replies)
        self.files = []

    async def cmd(self, c, timeout_ms=1000, **kw):
        if c.startswith("AT+CCERTDOWN="):
            self.files.append(c.split('"')[1])
        if c == "AT+CCERTLIST":
            self.replies[c] = ['+CCERTLIST: "%s"' % f for f in self.files]
        return await ScriptAT.cmd(self, c, timeout_ms, **kw)


class Pub:
    """The CellularPublisher attributes cellular_setup.tls reads and writes."""

    def __init__(self, at, revision):
        self.at = at
        self.log = None
        self.mq = self  # cellular_setup.tls reads pub.mq.cmd_timeout_ms for the Tls it makes
        self.cmd_timeout_ms = 1000
        self.modem = Sim7600(at)
        self.modem.revision = revision  # as bring-up read it from ATI / AT+CGMR
        self.certs = {"ca": CA}
        self.cert_names = {}
        self.ssl_ctx = 0


async def _tls(pub):
    from net import cellular_setup

    try:
        return await cellular_setup.tls(pub)
    finally:
        sys.modules.pop("net.cellular_setup", None)


async def test_listed_revision_refused_before_anything_is_sent():
    at = ScriptAT({})
    e = await araises(TlsSetupError, _tls(Pub(at, "LE11B02SIM7500A")))
    assert e.kind == "unsupported", e.kind
    assert "LE11B02SIM7500A" in str(e) and "upgrade the module firmware" in str(e), str(e)
    assert at.sent == [], at.sent  # no AT+CCERTLIST/CCERTDOWN, no AT+CSSLCFG


async def test_unknown_revision_learns_it_from_the_csslcfg_error():
    rev = "LE20B09SIM7600X-T"
    at = CertAT({SSLVERSION: ATError(SSLVERSION, msg="ERROR", kind=ERROR)})
    pub = Pub(at, rev)
    sys.modules.pop("modem.tls", None)  # (as on the device: nothing else has it imported)
    e = await araises(TlsSetupError, _tls(pub))
    assert e.kind == "unsupported", e.kind
    msg = str(e)
    assert SSLVERSION + " answered ERROR" in msg and ("firmware %s" % rev) in msg, msg
    assert "upgrade the module firmware" in msg, msg
    ssl = [c for c in at.sent if c.startswith("AT+CSSLCFG")]
    assert ssl == [SSLVERSION], at.sent  # stopped at the first refused setting
    assert [c for c in at.sent if c.startswith("AT+CCERTDOWN")] and at.files, at.sent  # the upload went first
    assert pub.cert_names["ca"] == at.files[0], pub.cert_names
    assert "modem.certs" not in sys.modules and "modem.tls" not in sys.modules  # made for the call, dropped
