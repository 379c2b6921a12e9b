# The boot-time and rare parts of net.cellular: building a CellularPublisher from the telelogger
# config and its settings (init: CellularPublisher.__init__'s body, boot only, so net.cellular_rare,
# in the heap through every connect, does not carry it), reading the certificate files it names, the TLS set-up, the disconnect and the advice for
# a refused CONNECT. net.cellular imports this module for one call or one attribute (get, for its
# module __getattr__; core.errors.lookup) and drops it again.
from at.engine import ATError
from core.compat import DEFAULT_CLOCK, const
from core.errors import NetError, lookup
from modem.errors import CmqttError
from net.publisher import jitter_pick

_L_SERVICE = const(2)  # net/cellular.py's recovery levels (const(): no interned name; the same values there)
_L_MODEM = const(3)


def init(pub, at, clock, kw):
    """CellularPublisher.__init__ (after Publisher's): the settings, the drivers, the URC hooks."""
    _init(pub, at, clock, **kw)


def _init(
    pub,
    at,
    clock=None,
    client_id="freematics",
    host="localhost",
    port=1883,
    tls=False,
    keepalive=60,
    clean=True,
    user=None,
    password=None,
    ssl_ctx=0,
    certs=None,
    will=None,
    modem_cfg=None,
    bring_up=True,
    index=0,
    max_attempts=8,
    connect_budget_ms=600000,
    power_on=None,
    backoff_ms=1000,
    backoff_max_ms=60000,
    max_resends=5,
    pub_timeout_s=60,
    rng=None,
    log=None,
):
    pub.at = at
    pub.clock = clock or DEFAULT_CLOCK
    pub.client_id = client_id
    pub.host = host
    pub.port = port
    pub.tls = tls
    pub.keepalive = keepalive
    pub.clean = clean
    pub.user = user
    pub.password = password
    pub.ssl_ctx = ssl_ctx
    pub.certs = certs or {}
    pub.will = will  # (topic, message, qos)
    pub.max_attempts = max_attempts
    # one connect() gives up after this long (full bring-ups included), so the telelogger's sender
    # beats its watchdog (900 s) in a garage without coverage instead of resetting in a loop
    pub.connect_budget_ms = connect_budget_ms
    pub.power_on = power_on  # async: press the power key (a module that lost its power answers nothing)
    pub.backoff_ms = backoff_ms
    pub.backoff_max_ms = backoff_max_ms
    pub.max_resends = max_resends
    pub.pub_timeout_s = pub_timeout_s
    pub.rng = rng or jitter_pick
    pub.log = log
    # the drivers (modem, mq; modem_cfg, index) are made by CellularPublisher.__init__ once this module is
    # dropped again: Cmqtt's set-up imports modem.cmqtt_rare, three times (the boot's heap peak)
    pub._need = _L_MODEM if bring_up else _L_SERVICE  # the level the next connect starts from
    pub.cert_names = {}
    st = pub.stats
    st["resends"] = 0
    st["refusals"] = 0  # CONNECTs refused by the broker / TLS peer
    st["connect_ms"] = None  # last CMQTTSTART/CONNECT .. connected time
    at.on_urc("RDY", pub._on_rdy)


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
    module is dropped again (the boot's heap peak: the publisher's set-up imports this module again
    and the drivers' rare modules)."""
    b = cfg.get("broker", {})
    cell = cfg.get("cellular", {})
    tls = bool(b.get("tls"))
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
        "modem_cfg": modem_cfg(cfg),
        "log": log,
    }


def modem_cfg(cfg):
    # from_config's bring-up settings (its own function: each stays a small block; its name is the key's)
    cell = cfg.get("cellular", {})
    return {"apn": cell.get("apn"), "sim_pin": cell.get("sim_pin"), "apn_user": cfg.get("apn_user"), "apn_pass": cfg.get("apn_pass")}


def get(name):
    """net.cellular.<name> (its module __getattr__): read_certs, refusal_advice (from_config: net.cellular's)."""
    if name not in ("read_certs", "refusal_advice"):
        raise AttributeError(name)
    return globals()[name]
