# Certificates and SSL contexts on the SIM7600 (sim7600-mqtt-at.md §4): what stays resident.
#
#   tls = Tls(at, modem, verify=True)                  # modem: Sim7600 (for the firmware revision), optional
#   names = await tls.provision(ca=b"...", cert=b"...", key=b"...", progress=None)
#   await tls.configure(ctx=0, ca=names["ca"], cert=names["cert"], key=names["key"])   # authmode 2 if cert+key
#   -> then Cmqtt.connect(..., ssl_ctx=0) re-issues AT+CMQTTSSLCFG before every connect.
#
# The work (hashed certificate names, AT+CCERTDOWN/LIST/DELE, AT+CSSLCFG) is in modem/certs.py,
# imported per call and dropped from sys.modules afterwards. Without a CA, configure() refuses
# (TlsSetupError kind 'no_ca', naming certs.ca) unless verify is False (config
# broker.tls_verify: false): then authmode 0, with a warning each time. An AT+CSSLCFG="enableSNI"
# the module refuses is a warning, not a failure (tls.sni says whether it took).
# Errors: one class, TlsSetupError, .kind 'unsupported' (firmware without SSL), 'upload',
# 'config', 'no_ca'. cert_name, check_pem, ROLES, AUTH_* are read from modem/certs.py on access.
from core.errors import forget
from modem.errors import TlsSetupError

def __getattr__(name):  # cert_name, check_pem, ROLES, AUTH_*, _is_scheme_name: tools and tests
    if name in ("TlsUnsupported", "CertUploadError"):  # former subclasses: names of the one class (test e.kind)
        return TlsSetupError
    try:
        from modem import certs

        return getattr(certs, name)
    finally:
        forget("modem.certs")


async def _step(name, a, k):
    try:
        from modem import certs

        fn = getattr(certs, name)
        certs = None  # a finished coroutine keeps its locals: none may hold modem.certs
        return await fn(*a, **k)
    finally:
        fn = None
        forget("modem.certs")


class Tls:
    """The operations (modem/certs.py, imported per call):
    await list() -> names on the module; delete(name); upload(name, data, verify=True);
    ensure(role, data, listing=None, progress=None) -> (name, uploaded);
    provision(ca=None, cert=None, key=None, progress=None, check=True) -> {role: name}, sets .uploaded;
    configure(ctx=0, ca=None, cert=None, key=None, authmode=None, sni=True, sslversion=4, ignore_time=True,
    verify=None) -> authmode: AT+CSSLCFG for one context: sslversion, authmode (1 = verify server when a
    CA is given; 2 = mutual TLS when cert+key are given too; 0 only without a CA and with verify False),
    ignorelocaltime, cacert/clientcert/clientkey, enableSNI (.sni says whether it took). verify None:
    self.verify."""

    def __init__(self, at, modem=None, cmd_timeout_ms=5000, log=None, verify=True):
        self.at = at
        self.modem = modem
        self.t = cmd_timeout_ms
        self.log = log
        self.verify = verify
        self.uploaded = []
        self.sni = None

    def __getattr__(self, name):
        # the operations: modem/certs.py's functions of these names (list: its list_certificates)
        if name not in ("list", "delete", "upload", "ensure", "provision", "configure"):
            raise AttributeError(name)
        fn = "list_certificates" if name == "list" else name
        return lambda *a, **k: _step(fn, (self,) + a, k)
