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
from modem.errors import TlsSetupError, unload

# Former subclasses, kept as names of the one class (test e.kind to tell them apart).
TlsUnsupported = CertUploadError = TlsSetupError


def __getattr__(name):  # cert_name, check_pem, ROLES, AUTH_*, _is_scheme_name: tools and tests
    try:
        from modem import certs

        return getattr(certs, name)
    finally:
        unload("certs")


async def _step(name, *args):
    try:
        from modem import certs

        return await getattr(certs, name)(*args)
    finally:
        unload("certs")


class Tls:
    def __init__(self, at, modem=None, cmd_timeout_ms=5000, log=None, verify=True):
        self.at = at
        self.modem = modem
        self.t = cmd_timeout_ms
        self.log = log
        self.verify = verify
        self.uploaded = []
        self.sni = None

    async def list(self):
        return await _step("list_certs", self)

    async def delete(self, name):
        return await _step("delete", self, name)

    async def upload(self, name, data, verify=True):
        return await _step("upload", self, name, data, verify)

    async def ensure(self, role, data, listing=None, progress=None):
        return await _step("ensure", self, role, data, listing, progress)

    async def provision(self, ca=None, cert=None, key=None, progress=None, check=True):
        """Ensure each given file is on the module. Returns {role: name}; sets self.uploaded."""
        return await _step("provision", self, ca, cert, key, progress, check)

    async def configure(self, ctx=0, ca=None, cert=None, key=None, authmode=None, sni=True, sslversion=4, ignore_time=True,
                        verify=None):
        """AT+CSSLCFG for one context: sslversion, authmode (1 = verify server when a CA is given; 2 =
        mutual TLS when cert+key are given too; 0 only without a CA and with verify False),
        ignorelocaltime, cacert/clientcert/clientkey, enableSNI. verify None: self.verify."""
        return await _step("configure", self, ctx, ca, cert, key, authmode, sni, sslversion, ignore_time, verify)
