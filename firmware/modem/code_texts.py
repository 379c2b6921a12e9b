# SIM7600 error and state texts (SIMCom SIM7500_SIM7600 Series AT Command Manual V3.00: ch.16 MQTT(S) §16.3.1,
# ch.10 SSL). A table module read on demand: modem.codes' functions import it through core.errors.lookup when an
# error or a state has to be explained, and drop it again, so none of these strings stays resident on the ESP32.
# One entry per line. The functions that read the tables are here too: modem.codes hands them out (its
# __getattr__ -> attr()), and the words of a session that went down (at the end; the errors and events of
# modem.cmqtt and the code families are modem/code_events.py's).
# Few module globals (its dict table is one block: 37 slots for up to 37 names): what one function alone uses is
# imported there (at.reader's ATError kinds too).
from modem import codes
from modem.cmqtt_errors import parse_code

# CMQTT <err> codes 0..35 ([M] §16.3.1; 35 is from the A76XX manual, treated as possible): line n = code n,
# in chunks of at most ~200 bytes (a line table may be a tuple of chunks: no 766-byte block on a fragmented heap)
CMQTT = (
    (
        "operation succeeded\n"
        "failed\n"
        "bad UTF-8 string\n"
        "sock connect fail\n"
        "sock create fail\n"
        "sock close fail\n"
        "message receive fail\n"
        "network open fail\n"
        "network close fail\n"
        "network not opened\n"
        "client index error\n"
    ),
    (
        "no connection\n"
        "invalid parameter\n"
        "not supported operation\n"
        "client is busy\n"
        "require connection fail\n"
        "sock sending fail\n"
        "timeout\n"
        "topic is empty\n"
        "client is used\n"
        "client not acquired\n"
        "client not released\n"
    ),
    (
        "length out of range\n"
        "network is opened\n"
        "packet fail\n"
        "DNS error\n"
        "socket is closed by server\n"
        "connection refused: unaccepted protocol version\n"
        "connection refused: identifier rejected\n"
    ),
    (
        "connection refused: server unavailable\n"
        "connection refused: bad user name or password\n"
        "connection refused: not authorized\n"
        "handshake fail\n"
        "not set certificate\n"
        "open SSL session failed\n"
    ),
    (
        "disconnect from server failed\n"
    ),
)

# What a fleet engineer should do about each code that has a known cause/fix: "<code>=<hint>".
# In chunks of a few lines: loading this module on a fragmented heap (an error after a network
# cut) then needs no block of more than ~200 bytes for one string. NAMES and CONNLOST are one chunk each.
HINTS = (
    (
        "2=payload/topic is not valid UTF-8: set AT+CMQTTCFG=\"checkUTF8\",<idx>,0 for binary payloads\n"
    ),
    (
        "3=socket connect failed: broker host/port unreachable from the mobile network, or a firewall; check the tcp:// address and port\n"
        "6=message receive failed: the link dropped mid-message; reconnect\n"
    ),
    (
        "9=network not opened: CMQTTSTART activates the PDP context; check registration and APN\n"
        "11=no connection: the MQTT session is down (CONNECT never completed or was lost); reconnect\n"
    ),
    (
        "12=invalid parameter: check lengths and ranges (keepalive 1-64800, pub_timeout 60-180, address starts with tcp://)\n"
    ),
    (
        "14=client is busy: a previous asynchronous CMQTT result or an incoming message was still in flight\n"
    ),
    (
        "17=timeout: the broker did not answer in time (PUBACK/SUBACK/CONNACK); check the link and raise pub_timeout/optimeout\n"
    ),
    (
        "19=client is used: a stale session from before a reset; DISC/REL/STOP then START again\n"
        "20=client not acquired: run AT+CMQTTACCQ after AT+CMQTTSTART before using the client\n"
    ),
    (
        "21=client not released: run AT+CMQTTREL before AT+CMQTTSTOP/ACCQ\n"
        "23=network is opened: the MQTT service is still running from before an MCU reset; REL/STOP first\n"
    ),
    (
        "25=DNS error: check the broker host name and the APN's DNS\n"
        "26=socket closed by the server: the broker dropped the session (policy, duplicate client id, or a protocol error)\n"
    ),
    (
        "28=identifier rejected: the broker refused the client id (empty, too long, or not allowed by its policy)\n"
        "29=server unavailable: the broker is up but refuses service; retry later\n"
    ),
    (
        "30=bad user name or password\n"
        "31=not authorized: check the device certificate/policy on the broker\n"
        "32=TLS handshake failed: wrong/truncated CA, client cert or key, SNI off for a cloud broker, or clock\n"
    ),
    (
        "33=certificate not set: upload with AT+CCERTDOWN and set cacert/clientcert/clientkey in AT+CSSLCFG\n"
        "34=SSL session could not be opened: check sslversion/authmode and the certificate files\n"
    ),
)

# Names that differ from the meaning in CamelCase (the names the firmware always gave them)
NAMES = ((
    "11=NoConnection\n"
    "14=ClientBusy\n"
    "17=CmqttTimeout\n"
    "19=ClientUsed\n"
    "20=ClientNotAcquired\n"
    "23=NetworkOpened\n"
    "32=HandshakeFail\n"
    "33=NotSetCertificate\n"
    "34=SslSessionFailed\n"
),)

# +CMQTTCONNLOST: <idx>,<cause>
CONNLOST = ((
    "1=socket closed passively\n"
    "2=socket reset\n"
    "3=network closed\n"
),)

# +CREG/+CGREG/+CEREG <stat>: line n = stat n
REG = (
    "not registered, not searching\n"
    "registered, home network\n"
    "not registered, searching\n"
    "registration denied\n"
    "unknown\n"
    "registered, roaming\n"
    "registered for SMS only, home\n"
    "registered for SMS only, roaming\n"
)

FIRMWARE_NO_SSL_FIX = (
    "this SIM7600 firmware cannot do MQTT over SSL (AT+CSSLCFG refused): upgrade the module "
    "firmware over its USB port with SIMCom's tool (e.g. LE11B03SIM7600A-H or newer), or use plain "
    "MQTT / the WiFi transport"
)


def line(name, n):
    """Line n (0-based) of table `name` (one string, or a tuple of chunks of whole lines), or None."""
    t = globals()[name]
    if not isinstance(n, int) or n < 0:
        return None
    if isinstance(t, tuple):
        for c in t:
            k = c.count("\n")
            if n < k:
                t = c
                break
            n -= k
        else:
            return None
    i = 0
    while n > 0:
        i = t.find("\n", i) + 1
        if i == 0:
            return None
        n -= 1
    j = t.find("\n", i)
    return t[i:j] if j > i else None


def keyed(name, code):
    """The text after '<code>=' in keyed table `name` (chunks of "<code>=<text>" lines), or None."""
    if not isinstance(code, int):
        return None
    key = "%d=" % code
    for t in globals()[name]:
        i = 0 if t.startswith(key) else t.find("\n" + key)
        if i >= 0:
            if i:
                i += 1
            i += len(key)
            return t[i : t.find("\n", i)]
    return None


def cmqtt_info(code):
    """(name, meaning, hint) of CMQTT <err> `code`: the name is from NAMES or the meaning in
    CamelCase ('sock connect fail' -> 'SockConnectFail'), a distinct one per code."""
    m = line("CMQTT", code)
    if m is None:
        return ("UnknownError", "unknown CMQTT error %s" % code, None)
    n = keyed("NAMES", code)
    if n:
        return (n, m, keyed("HINTS", code))
    out = []
    for w in m.replace(":", " ").replace("-", " ").split():
        out.append(w[0].upper() + w[1:])
    return ("".join(out), m, keyed("HINTS", code))


def get(name):
    """A whole table as a tuple (line tables) or a dict (keyed tables), or a constant."""
    if name == "FIRMWARE_NO_SSL_FIX":
        return FIRMWARE_NO_SSL_FIX
    t = globals()[name]
    if name in ("CMQTT", "REG"):
        return tuple((t if isinstance(t, str) else "".join(t)).split("\n")[:-1])
    d = {}
    for chunk in t:
        for ln in chunk.split("\n")[:-1]:
            k, v = ln.split("=", 1)
            d[int(k)] = v
    return d


def cmqtt_error(e, op, code, text):
    """modem.cmqtt_errors.CmqttError.__init__: e.op, e.name, e.meaning, e.hint and the message."""
    from core.errors import NetError

    if code is None:
        name, meaning, hint = "CmqttError", text or "error", None
    else:
        name, meaning, hint = cmqtt_info(code)
    msg = "%s failed" % op
    if text:
        msg = "%s: %s" % (msg, text)
    NetError.__init__(e, msg, code, meaning)
    e.op = op
    e.name = name
    e.hint = hint


def cmqtt_meaning(code):
    return line("CMQTT", code) or "unknown CMQTT error %s" % code


def cmqtt_hint(code):
    return keyed("HINTS", code)


def connlost_cause(cause):
    return keyed("CONNLOST", cause) or "unknown cause %s" % cause


def cme_meaning(code):
    from core.errors import lookup

    return (lookup("at.cme", "meaning", code) if isinstance(code, int) else None) or "CME error %s" % code


def reg_state(stat):
    return line("REG", stat) or "unknown state %s" % stat


_TABLES = {
    "CMQTT_ERRORS": "CMQTT",
    "CMQTT_HINTS": "HINTS",
    "CMQTT_CONNLOST_CAUSES": "CONNLOST",
    "REG_STATES": "REG",
    "FIRMWARE_NO_SSL_FIX": "FIRMWARE_NO_SSL_FIX",
}


def reg_error(st, verdict, timeout_ms):
    """modem/netreg.py wait_registered's ModemError for the stats `st` (CREG, CGREG, CEREG):
    'reg_denied' (verdict 'denied') or 'reg_timeout' after timeout_ms."""
    from modem.errors import ModemError
    if verdict == "denied":
        return ModemError(
            "network registration denied (CREG %s, CGREG %s, CEREG %s): the SIM/plan is not allowed "
            "on this network; check the SIM is activated for data" % st,
            codes.REG_DENIED,
            reg_state(codes.REG_DENIED),
            kind="reg_denied",
        )
    names = ", ".join(reg_state(s) for s in st if s is not None) or "no answer to any query"
    return ModemError(
        "not registered after %d ms (CREG %s, CGREG %s, CEREG %s: %s); check antenna and coverage"
        % ((timeout_ms,) + st + (names,)),
        kind="reg_timeout",
    )


def attr(name):
    """modem.codes.<name> for what is not resident there: a function of this module, or a whole
    table (built on each access)."""
    if name in ("cmqtt_info", "cmqtt_meaning", "cmqtt_hint", "connlost_cause", "cme_meaning", "reg_state"):
        return globals()[name]
    if name in ("is_refused", "is_tls", "is_peer_refusal"):  # (the families: modem/code_events.py's, forgotten again)
        from core.errors import lookup

        return lookup(codes.EVENTS, "family", name)
    if name in _TABLES:
        return get(_TABLES[name])
    if name == "CME_ERRORS":
        from core.errors import lookup

        return lookup("at.cme", "table")
    if name in ("CMQTT_ERROR_COUNT", "RX_CHUNK_MAX"):  # limits of [M] ch.16 only host tools and tests read:
        return 36 if name == "CMQTT_ERROR_COUNT" else 1500  # <err> 0..35; RXTOPIC/RXPAYLOAD chunks at most
    if name in ("BOOT_URCS", "UNSOLICITED"):
        from at import engine

        u = engine.UNSOLICITED
        return u if name == "UNSOLICITED" else u[:4]  # the boot-time URCs: its first four
    raise AttributeError(name)


# ---------------------------------------------------------------------------------------------
# The words of a session that went down (down_reason); the errors themselves (a failed AT exchange, a refused
# topic or payload, a dropped message) are modem/code_events.py's: they need none of the tables above.
def down_reason(self, line):
    """Why the session went down, from its URC line."""
    if line.startswith("+CMQTTNONET"):
        return "no network (+CMQTTNONET): service needs STOP/START"
    code = parse_code(line.split(":", 1)[1])
    if line.startswith("+CMQTTCONNLOST"):
        return "connection lost (cause %s: %s)" % (code, connlost_cause(code))
    return "keep-alive ping failed (error %s: %s)" % (code, cmqtt_meaning(code or 0))
