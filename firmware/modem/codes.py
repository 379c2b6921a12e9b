# SIM7600 protocol facts, kept in this one place (SIMCom SIM7500_SIM7600 Series AT
# Command Manual V3.00: ch.16 MQTT(S) §16.3.1, ch.10 SSL, 3GPP TS 27.007 for +CME).
# The firmware, the simulator and the transcript doctor all read these tables.
#
# RAM: the text tables are single strings, one entry per line, looked up by scanning (a tuple or
# dict of ~100 str objects costs about 3x the RAM on MicroPython). Host tools and tests that want
# the whole table get a tuple/dict built on demand through the module __getattr__ (PEP 562, which
# MicroPython supports too): codes.CMQTT_ERRORS, codes.CMQTT_HINTS, codes.CME_ERRORS, ...

# CMQTT <err> codes 0..35 ([M] §16.3.1; 35 is from the A76XX manual, treated as possible): line n = code n
_CMQTT_ERRORS = (
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
    "length out of range\n"
    "network is opened\n"
    "packet fail\n"
    "DNS error\n"
    "socket is closed by server\n"
    "connection refused: unaccepted protocol version\n"
    "connection refused: identifier rejected\n"
    "connection refused: server unavailable\n"
    "connection refused: bad user name or password\n"
    "connection refused: not authorized\n"
    "handshake fail\n"
    "not set certificate\n"
    "open SSL session failed\n"
    "disconnect from server failed\n"
)
CMQTT_ERROR_COUNT = 36

# What a fleet engineer should do about each code that has a known cause/fix: "<code>=<hint>"
_CMQTT_HINTS = (
    "2=payload/topic is not valid UTF-8: set AT+CMQTTCFG=\"checkUTF8\",<idx>,0 for binary payloads\n"
    "3=socket connect failed: broker host/port unreachable from the mobile network, or a firewall; check the tcp:// address and port\n"
    "6=message receive failed: the link dropped mid-message; reconnect\n"
    "9=network not opened: CMQTTSTART activates the PDP context; check registration and APN\n"
    "11=no connection: the MQTT session is down (CONNECT never completed or was lost); reconnect\n"
    "12=invalid parameter: check lengths and ranges (keepalive 1-64800, pub_timeout 60-180, address starts with tcp://)\n"
    "14=client is busy: a previous asynchronous CMQTT result or an incoming message was still in flight\n"
    "17=timeout: the broker did not answer in time (PUBACK/SUBACK/CONNACK); check the link and raise pub_timeout/optimeout\n"
    "19=client is used: a stale session from before a reset; DISC/REL/STOP then START again\n"
    "20=client not acquired: run AT+CMQTTACCQ after AT+CMQTTSTART before using the client\n"
    "21=client not released: run AT+CMQTTREL before AT+CMQTTSTOP/ACCQ\n"
    "23=network is opened: the MQTT service is still running from before an MCU reset; REL/STOP first\n"
    "25=DNS error: check the broker host name and the APN's DNS\n"
    "26=socket closed by the server: the broker dropped the session (policy, duplicate client id, or a protocol error)\n"
    "28=identifier rejected: the broker refused the client id (empty, too long, or not allowed by its policy)\n"
    "29=server unavailable: the broker is up but refuses service; retry later\n"
    "30=bad user name or password\n"
    "31=not authorized: check the device certificate/policy on the broker\n"
    "32=TLS handshake failed: wrong/truncated CA, client cert or key, SNI off for a cloud broker, or clock\n"
    "33=certificate not set: upload with AT+CCERTDOWN and set cacert/clientcert/clientkey in AT+CSSLCFG\n"
    "34=SSL session could not be opened: check sslversion/authmode and the certificate files\n"
)

# +CMQTTCONNLOST: <idx>,<cause>
_CMQTT_CONNLOST_CAUSES = (
    "1=socket closed passively\n"
    "2=socket reset\n"
    "3=network closed\n"
)

# +CME ERROR numeric codes (3GPP TS 27.007 §9.2 plus SIMCom's list): the common ones
_CME_ERRORS = (
    "0=phone failure\n"
    "3=operation not allowed\n"
    "4=operation not supported\n"
    "10=SIM not inserted\n"
    "11=SIM PIN required\n"
    "12=SIM PUK required\n"
    "13=SIM failure\n"
    "14=SIM busy\n"
    "15=SIM wrong\n"
    "16=incorrect password\n"
    "17=SIM PIN2 required\n"
    "18=SIM PUK2 required\n"
    "20=memory full\n"
    "23=text string too long\n"
    "30=no network service\n"
    "31=network timeout\n"
    "32=network not allowed - emergency calls only\n"
    "100=unknown\n"
    "103=illegal MS\n"
    "106=illegal ME\n"
    "107=GPRS services not allowed\n"
    "111=PLMN not allowed\n"
    "112=location area not allowed\n"
    "113=roaming not allowed in this location area\n"
    "132=service option not supported\n"
    "133=requested service option not subscribed\n"
    "134=service option temporarily out of order\n"
    "148=unspecified GPRS error\n"
    "149=PDP authentication failure\n"
)

# +CREG/+CGREG/+CEREG <stat>: line n = stat n
_REG_STATES = (
    "not registered, not searching\n"
    "registered, home network\n"
    "not registered, searching\n"
    "registration denied\n"
    "unknown\n"
    "registered, roaming\n"
    "registered for SMS only, home\n"
    "registered for SMS only, roaming\n"
)
REG_OK = (1, 5)
REG_DENIED = 3

# +CPIN: states that need the user (anything but READY)
CPIN_READY = "READY"

# Modem firmware revisions (AT+CGMR / ATI Revision) known to refuse AT+CSSLCFG="sslversion"
# (seed thread: LE11B02SIM7500A on a ONE+ model B answers ERROR; fixed by LE11B03SIM7600A-H).
FIRMWARE_NO_SSL = ("LE11B02SIM7500A",)
FIRMWARE_NO_SSL_FIX = (
    "this SIM7600 firmware cannot do MQTT over SSL (AT+CSSLCFG refused): upgrade the module "
    "firmware over its USB port with SIMCom's tool (e.g. LE11B03SIM7600A-H or newer), or use plain "
    "MQTT / the WiFi transport"
)

# Boot-time URCs the module prints unasked (seed thread; LilyGO T-SIM7600X#100)
BOOT_URCS = ("RDY", "+CPIN: READY", "SMS DONE", "PB DONE")

# Lines the module prints unasked that the AT engine recognises even with no handler registered,
# so they never pollute a reply in flight (T-SIM7600X#100, TinyGSM#309, [M] ch.16 URCs).
UNSOLICITED = BOOT_URCS + (
    "+CGEV:",
    "+CIPEVENT:",
    "+CMQTTNONET",
    "+CMQTTCONNLOST:",
    "+CMQTTPING:",
    "+CPIN: NOT READY",
)

# CMQTT limits ([M] ch.16)
TOPIC_MAX = 1024
PAYLOAD_MAX = 10240
CLIENT_ID_MAX = 128
RX_CHUNK_MAX = 1500
PUB_TIMEOUT_MIN = 60
PUB_TIMEOUT_MAX = 180
CERT_MAX = 10240


def _line(table, n):
    """Line n (0-based) of a newline-terminated table, or None."""
    i = 0
    while n > 0:
        i = table.find("\n", i) + 1
        if i == 0:
            return None
        n -= 1
    j = table.find("\n", i)
    return table[i:j] if j > i else None


def _keyed(table, code):
    """The text after '<code>=' in a keyed table, or None."""
    key = "%d=" % code
    i = 0 if table.startswith(key) else table.find("\n" + key)
    if i < 0:
        return None
    if i:
        i += 1
    i += len(key)
    return table[i : table.find("\n", i)]


def cmqtt_meaning(code):
    if isinstance(code, int) and 0 <= code < CMQTT_ERROR_COUNT:
        return _line(_CMQTT_ERRORS, code)
    return "unknown CMQTT error %s" % code


def cmqtt_hint(code):
    return _keyed(_CMQTT_HINTS, code) if isinstance(code, int) else None


def connlost_cause(cause):
    return (_keyed(_CMQTT_CONNLOST_CAUSES, cause) if isinstance(cause, int) else None) or "unknown cause %s" % cause


def cme_meaning(code):
    return (_keyed(_CME_ERRORS, code) if isinstance(code, int) else None) or "CME error %s" % code


def reg_state(stat):
    return (_line(_REG_STATES, stat) if isinstance(stat, int) and stat >= 0 else None) or "unknown state %s" % stat


def _table(text):
    return tuple(text.split("\n")[:-1])


def _dict(text):
    d = {}
    for ln in _table(text):
        k, v = ln.split("=", 1)
        d[int(k)] = v
    return d


def __getattr__(name):
    # whole tables for host tools and tests; built on each access, so firmware uses the functions
    if name == "CMQTT_ERRORS":
        return _table(_CMQTT_ERRORS)
    if name == "REG_STATES":
        return _table(_REG_STATES)
    if name == "CMQTT_HINTS":
        return _dict(_CMQTT_HINTS)
    if name == "CME_ERRORS":
        return _dict(_CME_ERRORS)
    if name == "CMQTT_CONNLOST_CAUSES":
        return _dict(_CMQTT_CONNLOST_CAUSES)
    raise AttributeError(name)
