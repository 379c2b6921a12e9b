# Certificates and SSL contexts on the SIM7600 (sim7600-mqtt-at.md §4).
#
# Naming scheme (decided here, used by the firmware and scripts/provision.py):
#   a certificate is stored on the module as  "<role>-<h8>.pem"   e.g. "ca-1a2b3c4d.pem"
#   role is "ca", "cert" or "key"; h8 is the first 4 bytes of the SHA-256 of the exact bytes
#   uploaded, in hex. So AT+CCERTLIST alone tells whether the module already holds these exact
#   bytes: same name -> skip the upload; other "<role>-xxxxxxxx.pem" files are stale -> CCERTDELE.
#   Files that do not follow the scheme are never touched.
#
#   tls = Tls(at, modem)                               # modem: Sim7600 (for the firmware revision), optional
#   names = await tls.provision(ca=b"...", cert=b"...", key=b"...", progress=None)
#   await tls.configure(ctx=0, ca=names["ca"], cert=names["cert"], key=names["key"])   # authmode 2 if cert+key
#   -> then Cmqtt.connect(..., ssl_ctx=0) re-issues AT+CMQTTSSLCFG before every connect.
import binascii
import hashlib

from at.engine import ATCommandError, ATError, CMEError
from modem import codes
from net.publisher import NetError

ROLES = ("ca", "cert", "key")

AUTH_NONE = 0
AUTH_SERVER = 1
AUTH_MUTUAL = 2


class TlsSetupError(NetError):
    pass


class TlsUnsupported(TlsSetupError):
    """This module's firmware cannot do MQTT over SSL (codes.FIRMWARE_NO_SSL)."""

    pass


class CertUploadError(TlsSetupError):
    pass


def cert_name(role, data):
    if role not in ROLES:
        raise ValueError("certificate role must be one of %s" % (ROLES,))
    h = binascii.hexlify(hashlib.sha256(bytes(data)).digest()[:4])
    return "%s-%s.pem" % (role, str(h, "ascii"))


def _is_scheme_name(role, name):
    # "<role>-" + 8 hex + ".pem"
    if not (name.startswith(role + "-") and name.endswith(".pem")):
        return False
    h = name[len(role) + 1 : -4]
    if len(h) != 8:
        return False
    for c in h:
        if c not in "0123456789abcdef":
            return False
    return True


def check_pem(role, data):
    """Cheap sanity check before an upload: a PEM block that begins and ends."""
    if not data:
        raise CertUploadError("%s file is empty" % role)
    if len(data) > codes.CERT_MAX:
        raise CertUploadError("%s file is %d bytes; AT+CCERTDOWN takes at most %d" % (role, len(data), codes.CERT_MAX))
    b = bytes(data)
    if b.find(b"-----BEGIN ") < 0 or b.find(b"-----END ") < 0 or not b.rstrip().endswith(b"-----"):
        raise CertUploadError("%s is not a complete PEM file (missing -----BEGIN/-----END lines: truncated?)" % role)


class Tls:
    def __init__(self, at, modem=None, cmd_timeout_ms=5000, log=None):
        self.at = at
        self.modem = modem
        self.t = cmd_timeout_ms
        self.log = log

    def _check_firmware(self):
        if self.modem is not None and not self.modem.ssl_supported():
            raise TlsUnsupported("modem firmware %s: %s" % (self.modem.revision, codes.FIRMWARE_NO_SSL_FIX))

    async def list(self):
        r = await self.at.cmd("AT+CCERTLIST", timeout_ms=self.t)
        out = []
        for ln in r.lines:
            if ln.startswith("+CCERTLIST:"):
                out.append(ln[11:].strip().strip('"'))
        return out

    async def delete(self, name):
        try:
            await self.at.cmd('AT+CCERTDELE="%s"' % name, timeout_ms=self.t)
        except (ATCommandError, CMEError) as e:
            raise CertUploadError("AT+CCERTDELE=%s refused: %s" % (name, e))

    async def upload(self, name, data, verify=True):
        """AT+CCERTDOWN="<name>",<exact byte length>, data at the '>' prompt (the engine writes it
        in chunks), then check AT+CCERTLIST shows it."""
        data = bytes(data)
        if not 5 <= len(name) <= 128:
            raise CertUploadError("certificate name %r must be 5..128 characters" % name)
        if not 1 <= len(data) <= codes.CERT_MAX:
            raise CertUploadError("%s: %d bytes, AT+CCERTDOWN takes 1..%d" % (name, len(data), codes.CERT_MAX))
        # a 10 KB file at 115200 baud takes ~1 s; allow plenty
        tmo = self.t + len(data) // 4
        try:
            await self.at.cmd('AT+CCERTDOWN="%s",%d' % (name, len(data)), timeout_ms=tmo, data=data)
        except ATError as e:
            raise CertUploadError("upload of %s (%d bytes) failed: %s" % (name, len(data), e))
        if verify and name not in await self.list():
            raise CertUploadError("%s uploaded but missing from AT+CCERTLIST" % name)

    async def ensure(self, role, data, listing=None, progress=None):
        """Upload `data` as the role's hashed name unless the module already has it; delete
        stale files of the same role. Returns (name, uploaded: bool)."""
        name = cert_name(role, data)
        if listing is None:
            listing = await self.list()
        uploaded = False
        if name in listing:
            if progress:
                progress("%s: %s already on the module, skipped" % (role, name))
        else:
            if progress:
                progress("%s: uploading %s (%d bytes)" % (role, name, len(data)))
            await self.upload(name, data)
            uploaded = True
        for other in listing:
            if other != name and _is_scheme_name(role, other):
                if progress:
                    progress("%s: deleting stale %s" % (role, other))
                await self.delete(other)
        return name, uploaded

    async def provision(self, ca=None, cert=None, key=None, progress=None, check=True):
        """Ensure each given file is on the module. Returns {role: name} and sets
        self.uploaded = [names actually sent]."""
        listing = await self.list()
        names = {}
        self.uploaded = []
        for role, data in (("ca", ca), ("cert", cert), ("key", key)):
            if data is None:
                continue
            if check:
                check_pem(role, data)
            name, up = await self.ensure(role, data, listing, progress)
            names[role] = name
            if up:
                self.uploaded.append(name)
        return names

    async def _cfg(self, key, ctx, value):
        cmd = 'AT+CSSLCFG="%s",%d,%s' % (key, ctx, value)
        try:
            await self.at.cmd(cmd, timeout_ms=self.t)
        except (ATCommandError, CMEError) as e:
            if key == "sslversion":
                rev = self.modem.revision if self.modem is not None else "unknown"
                raise TlsUnsupported("%s answered ERROR (firmware %s): %s" % (cmd, rev, codes.FIRMWARE_NO_SSL_FIX))
            raise TlsSetupError("%s refused: %s" % (cmd, e))

    async def configure(self, ctx=0, ca=None, cert=None, key=None, authmode=None, sni=True, sslversion=4, ignore_time=True):
        """AT+CSSLCFG for one context: sslversion, authmode (1 = verify server when a CA is
        given; 2 = mutual TLS when cert+key are given too; 0 only when nothing is given),
        ignorelocaltime, cacert/clientcert/clientkey, enableSNI."""
        self._check_firmware()
        if authmode is None:
            if cert and key:
                authmode = AUTH_MUTUAL
            elif ca:
                authmode = AUTH_SERVER
            else:
                authmode = AUTH_NONE
        if authmode in (AUTH_SERVER, AUTH_MUTUAL) and not ca:
            raise TlsSetupError("authmode %d needs a CA certificate (certs.ca)" % authmode)
        if authmode == AUTH_MUTUAL and not (cert and key):
            raise TlsSetupError("mutual TLS (authmode 2) needs the device certificate and key (certs.cert, certs.key)")
        await self._cfg("sslversion", ctx, sslversion)
        await self._cfg("authmode", ctx, authmode)
        await self._cfg("ignorelocaltime", ctx, 1 if ignore_time else 0)
        if ca:
            await self._cfg("cacert", ctx, '"%s"' % ca)
        if cert:
            await self._cfg("clientcert", ctx, '"%s"' % cert)
        if key:
            await self._cfg("clientkey", ctx, '"%s"' % key)
        if sni:
            await self._cfg("enableSNI", ctx, 1)
        return authmode
