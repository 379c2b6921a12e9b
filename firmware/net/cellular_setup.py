# The boot-time and rare parts of net.cellular: building a CellularPublisher from the telelogger
# config, reading the certificate files it names, the TLS set-up, the disconnect and the advice for
# a refused CONNECT. net.cellular imports this module for one call or one attribute (get, for its
# module __getattr__; core.errors.lookup) and drops it again.
from at.engine import ATError
from core.compat import const
from core.errors import NetError, lookup
from modem.cmqtt_errors import CmqttError

_L_SERVICE = const(2)  # net/cellular.py's recovery level (const(): no interned name; the same value there)


async def tls(pub):
    """Upload the certificates (when given) and configure the SSL context of a CellularPublisher.
    A revision known to have no SSL (codes.FIRMWARE_NO_SSL) is refused before anything is sent; any
    other finds out from its answer to the first AT+CSSLCFG (an ERROR there: TlsSetupError 'unsupported',
    naming the command, the revision and the fix), after the upload. The driver (modem.tls.Tls: at,
    modem, cmd_timeout_ms, log) is made for this call and its module dropped again: nothing of it
    stays resident, and a publisher without TLS never loads it."""
    t = lookup("modem.tls", "Tls", pub.at, pub.modem, pub.mq.cmd_timeout_ms, pub.log)
    if not pub.modem.ssl_supported():
        lookup("modem.certs", "check_firmware", t)  # raises
    c = pub.certs
    if c:
        pub.cert_names = await t.provision(ca=c.get("ca"), cert=c.get("cert"), key=c.get("key"))
    n = pub.cert_names
    await t.configure(pub.ssl_ctx, ca=n.get("ca"), cert=n.get("cert"), key=n.get("key"))


async def disconnect(pub):
    mq = pub.mq
    if mq.connected():
        try:
            await mq.disconnect()
        except CmqttError:
            pass
    for fn in (mq.release, mq.stop):
        try:
            await fn()
        except (CmqttError, ATError):
            pass
    pub._need = _L_SERVICE  # the next connect starts the service again


def refusal_advice(e, host, port, tls):
    """What was refused and what to check, for a CONNECT the broker or the TLS peer refused."""
    if tls:
        what = "the TLS peer / broker at %s:%d refused the session (%s)" % (host, port, e)
        check = "check the CA certificate (certs.ca) matches the broker's, the client certificate and key (certs.cert, certs.key) are the pair the broker trusts, and the endpoint host and port (TLS port, e.g. 8883)"
    else:
        what = "the broker at %s:%d refused the session (%s)" % (host, port, e)
        check = "check the endpoint host and port, the client id, mqtt_user/mqtt_pass, and whether the broker requires TLS or a client certificate"
    return "%s; %s. Not a modem fault: the module stays registered" % (what, check)


def read_certs(certs):
    """secrets.json names certificate files on the device ({"ca": "certs/ca.pem", ...}); the modem
    needs their bytes (AT+CCERTDOWN). Empty entries are left out; bytes are passed through; a file
    that cannot be read is a NetError naming the role and the path, before anything is sent."""
    out = {}
    for role in ("ca", "cert", "key"):
        v = (certs or {}).get(role)
        if not v:
            continue
        if isinstance(v, (bytes, bytearray)):
            out[role] = bytes(v)
            continue
        try:
            with open(v, "rb") as f:
                out[role] = f.read()
        except OSError as e:
            raise NetError("certs.%s: cannot read %s (%s)" % (role, v, e))
    return out


def from_config(cfg, log=None):
    """CellularPublisher's keyword arguments from the telelogger config dict (see ARCHITECTURE.md).
    net.cellular.from_config(at, cfg, clock=None, log=None) makes the publisher with them once this
    module is dropped again (the boot's heap peak: the publisher's set-up imports net.cellular_rare
    and the drivers' rare modules)."""
    b = cfg.get("broker", {})
    cell = cfg.get("cellular", {})
    tls = bool(b.get("tls"))
    mcfg = {"apn": cell.get("apn"), "sim_pin": cell.get("sim_pin"), "apn_user": cfg.get("apn_user"), "apn_pass": cfg.get("apn_pass")}
    return {
        "client_id": cfg.get("device_id", "freematics"),
        "host": b.get("host", "localhost"),
        "port": b.get("port", 8883 if tls else 1883),
        "tls": tls,
        "keepalive": b.get("keepalive", 60),
        "clean": b.get("clean_session", True),
        "user": cfg.get("mqtt_user") or None,
        "password": cfg.get("mqtt_pass") or None,
        "ssl_ctx": cell.get("ssl_ctx", 0),
        "certs": read_certs(cfg.get("certs")) if tls else None,
        "modem_cfg": mcfg,
        "log": log,
    }


def get(name):
    """net.cellular.<name> (its module __getattr__): read_certs, refusal_advice (from_config: net.cellular's)."""
    if name not in ("read_certs", "refusal_advice"):
        raise AttributeError(name)
    return globals()[name]
