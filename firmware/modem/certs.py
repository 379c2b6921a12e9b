# Certificate upload and AT+CSSLCFG for modem.tls.Tls (sim7600-mqtt-at.md §4). Imported only while
# a TLS set-up runs: modem.tls imports it per call and drops it from sys.modules afterwards. Every
# function takes the Tls object `t` (its at, modem, cmd timeout t.t, log, verify) first.
#
# Naming scheme (used by the firmware and scripts/provision.py): a certificate is stored on the
# module as "<role>-<h8>.pem" (e.g. "ca-1a2b3c4d.pem"); role is "ca", "cert" or "key"; h8 is the
# first 4 bytes of the SHA-256 of the exact bytes uploaded, in hex. So AT+CCERTLIST alone tells
# whether the module already holds these exact bytes: same name -> skip the upload; other
# "<role>-xxxxxxxx.pem" files are stale -> CCERTDELE. Files not following the scheme are never touched.
import binascii
import hashlib

from at.engine import CME, ERROR, ATError
from modem import codes
from modem.errors import TlsSetupError

AUTH_NONE = 0  # AT+CSSLCFG authmode: no verification
AUTH_SERVER = 1  # verify the server against the CA
AUTH_MUTUAL = 2  # ... and present the client certificate

ROLES = ("ca", "cert", "key")


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
    return not h.strip("0123456789abcdef")  # lower-case hex only (strip: no per-character names)


def _upload_error(msg):
    return TlsSetupError(msg, kind="upload")


def check_pem(role, data):
    """Cheap sanity check before an upload: a PEM block that begins and ends."""
    if not data:
        raise _upload_error("%s file is empty" % role)
    if len(data) > codes.CERT_MAX:
        raise _upload_error("%s file is %d bytes; AT+CCERTDOWN takes at most %d" % (role, len(data), codes.CERT_MAX))
    b = bytes(data)
    if b.find(b"-----BEGIN ") < 0 or b.find(b"-----END ") < 0 or not b.rstrip().endswith(b"-----"):
        raise _upload_error("%s is not a complete PEM file (missing -----BEGIN/-----END lines: truncated?)" % role)


def check_firmware(t):
    m = t.modem
    if m is not None and not m.ssl_supported():
        raise TlsSetupError("modem firmware %s: %s" % (m.revision, codes.FIRMWARE_NO_SSL_FIX), kind="unsupported")


async def list_certificates(t):
    r = await t.at.cmd("AT+CCERTLIST", timeout_ms=t.t)
    return [ln[11:].strip().strip('"') for ln in r.lines if ln.startswith("+CCERTLIST:")]


async def delete(t, name):
    try:
        await t.at.cmd('AT+CCERTDELE="%s"' % name, timeout_ms=t.t)
    except ATError as e:
        if e.kind not in (ERROR, CME):
            raise
        raise _upload_error("AT+CCERTDELE=%s refused: %s" % (name, e))


async def upload(t, name, data, verify=True):
    """AT+CCERTDOWN="<name>",<exact byte length>, data at the '>' prompt (the engine writes it in
    chunks), then check AT+CCERTLIST shows it."""
    data = bytes(data)
    if not 5 <= len(name) <= 128:
        raise _upload_error("certificate name %r must be 5..128 characters" % name)
    if not 1 <= len(data) <= codes.CERT_MAX:
        raise _upload_error("%s: %d bytes, AT+CCERTDOWN takes 1..%d" % (name, len(data), codes.CERT_MAX))
    tmo = t.t + len(data) // 4  # a 10 KB file at 115200 baud takes ~1 s; allow plenty
    try:
        await t.at.cmd('AT+CCERTDOWN="%s",%d' % (name, len(data)), timeout_ms=tmo, data=data)
    except ATError as e:
        raise _upload_error("upload of %s (%d bytes) failed: %s" % (name, len(data), e))
    if verify and name not in await list_certificates(t):
        raise _upload_error("%s uploaded but missing from AT+CCERTLIST" % name)


async def ensure(t, role, data, listing=None, progress=None):
    """Upload `data` as the role's hashed name unless the module already has it; delete stale files
    of the same role. Returns (name, uploaded: bool)."""
    name = cert_name(role, data)
    if listing is None:
        listing = await list_certificates(t)
    uploaded = False
    if name in listing:
        if progress:
            progress("%s: %s already on the module, skipped" % (role, name))
    else:
        if progress:
            progress("%s: uploading %s (%d bytes)" % (role, name, len(data)))
        await upload(t, name, data)
        uploaded = True
    for other in listing:
        if other != name and _is_scheme_name(role, other):
            if progress:
                progress("%s: deleting stale %s" % (role, other))
            await delete(t, other)
    return name, uploaded


async def provision(t, ca=None, cert=None, key=None, progress=None, check=True):
    """Ensure each given file is on the module. Returns {role: name}; sets t.uploaded."""
    listing = await list_certificates(t)
    names = {}
    t.uploaded = []
    for role, data in (("ca", ca), ("cert", cert), ("key", key)):
        if data is None:
            continue
        if check:
            check_pem(role, data)
        name, up = await ensure(t, role, data, listing, progress)
        names[role] = name
        if up:
            t.uploaded.append(name)
    return names


async def _cfg(t, key, ctx, value):
    cmd = 'AT+CSSLCFG="%s",%d,%s' % (key, ctx, value)
    try:
        await t.at.cmd(cmd, timeout_ms=t.t)
        return True
    except ATError as e:
        if e.kind not in (ERROR, CME):
            raise
        if key == "sslversion":
            rev = t.modem.revision if t.modem is not None else "unknown"
            raise TlsSetupError("%s answered ERROR (firmware %s): %s" % (cmd, rev, codes.FIRMWARE_NO_SSL_FIX), kind="unsupported")
        if key == "enableSNI":  # older module firmware: no SNI, but TLS itself may still work
            if t.log:
                t.log.warn("%s refused (%s): TLS without SNI; a broker that needs SNI will refuse", cmd, e)
            return False
        raise TlsSetupError("%s refused: %s" % (cmd, e), kind="config")


def pick_authmode(t, ca, cert, key, authmode, verify):
    if authmode is None:
        authmode = AUTH_MUTUAL if cert and key else AUTH_SERVER if ca else AUTH_NONE
    if authmode in (AUTH_SERVER, AUTH_MUTUAL) and not ca:
        raise TlsSetupError("authmode %d needs a CA certificate (certs.ca)" % authmode, kind="no_ca")
    if authmode == AUTH_MUTUAL and not (cert and key):
        raise TlsSetupError("mutual TLS (authmode 2) needs the device certificate and key (certs.cert, certs.key)", kind="config")
    if authmode == AUTH_NONE:
        if verify:
            raise TlsSetupError(
                "broker.tls is on but certs.ca is empty: the broker's certificate cannot be verified. Put the "
                "broker's CA certificate in secrets certs.ca, or set broker.tls_verify: false to connect without "
                "verification (anyone on the path can read and change the traffic)",
                kind="no_ca",
            )
        if t.log:
            t.log.warn("broker.tls_verify is false: TLS without verifying the broker (authmode 0)")
    return authmode


async def configure(t, ctx=0, ca=None, cert=None, key=None, authmode=None, sni=True, sslversion=4, ignore_time=True, verify=None):
    check_firmware(t)
    authmode = pick_authmode(t, ca, cert, key, authmode, t.verify if verify is None else verify)
    await _cfg(t, "sslversion", ctx, sslversion)
    await _cfg(t, "authmode", ctx, authmode)
    await _cfg(t, "ignorelocaltime", ctx, 1 if ignore_time else 0)
    if ca:
        await _cfg(t, "cacert", ctx, '"%s"' % ca)
    if cert:
        await _cfg(t, "clientcert", ctx, '"%s"' % cert)
    if key:
        await _cfg(t, "clientkey", ctx, '"%s"' % key)
    t.sni = bool(sni) and await _cfg(t, "enableSNI", ctx, 1)
    return authmode
