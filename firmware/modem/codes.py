# SIM7600 protocol facts, kept in this one place (SIMCom SIM7500_SIM7600 Series AT
# Command Manual V3.00: ch.16 MQTT(S) §16.3.1, ch.10 SSL, 3GPP TS 27.007 for +CME).
# The firmware, the simulator and the transcript doctor all read these tables.

# CMQTT <err> codes 0..35 ([M] §16.3.1; 35 is from the A76XX manual, treated as possible)
CMQTT_ERRORS = (
    "operation succeeded",  # 0
    "failed",  # 1
    "bad UTF-8 string",  # 2
    "sock connect fail",  # 3
    "sock create fail",  # 4
    "sock close fail",  # 5
    "message receive fail",  # 6
    "network open fail",  # 7
    "network close fail",  # 8
    "network not opened",  # 9
    "client index error",  # 10
    "no connection",  # 11
    "invalid parameter",  # 12
    "not supported operation",  # 13
    "client is busy",  # 14
    "require connection fail",  # 15
    "sock sending fail",  # 16
    "timeout",  # 17
    "topic is empty",  # 18
    "client is used",  # 19
    "client not acquired",  # 20
    "client not released",  # 21
    "length out of range",  # 22
    "network is opened",  # 23
    "packet fail",  # 24
    "DNS error",  # 25
    "socket is closed by server",  # 26
    "connection refused: unaccepted protocol version",  # 27
    "connection refused: identifier rejected",  # 28
    "connection refused: server unavailable",  # 29
    "connection refused: bad user name or password",  # 30
    "connection refused: not authorized",  # 31
    "handshake fail",  # 32
    "not set certificate",  # 33
    "open SSL session failed",  # 34
    "disconnect from server failed",  # 35
)

# What a fleet engineer should do about each code that has a known cause/fix.
CMQTT_HINTS = {
    3: "socket connect failed: broker host/port unreachable from the mobile network, or a firewall; check the tcp:// address and port",
    6: "message receive failed: the link dropped mid-message; reconnect",
    12: "invalid parameter: check lengths and ranges (keepalive 1-64800, pub_timeout 60-180, address starts with tcp://)",
    17: "timeout: the broker did not answer in time (PUBACK/SUBACK/CONNACK); check the link and raise pub_timeout/optimeout",
    20: "client not acquired: run AT+CMQTTACCQ after AT+CMQTTSTART before using the client",
    26: "socket closed by the server: the broker dropped the session (policy, duplicate client id, or a protocol error)",
    28: "identifier rejected: the broker refused the client id (empty, too long, or not allowed by its policy)",
    29: "server unavailable: the broker is up but refuses service; retry later",
    2: "payload/topic is not valid UTF-8: set AT+CMQTTCFG=\"checkUTF8\",<idx>,0 for binary payloads",
    9: "network not opened: CMQTTSTART activates the PDP context; check registration and APN",
    11: "no connection: the MQTT session is down (CONNECT never completed or was lost); reconnect",
    14: "client is busy: a previous asynchronous CMQTT result or an incoming message was still in flight",
    19: "client is used: a stale session from before a reset; DISC/REL/STOP then START again",
    21: "client not released: run AT+CMQTTREL before AT+CMQTTSTOP/ACCQ",
    23: "network is opened: the MQTT service is still running from before an MCU reset; REL/STOP first",
    25: "DNS error: check the broker host name and the APN's DNS",
    30: "bad user name or password",
    31: "not authorized: check the device certificate/policy on the broker",
    32: "TLS handshake failed: wrong/truncated CA, client cert or key, SNI off for a cloud broker, or clock",
    33: "certificate not set: upload with AT+CCERTDOWN and set cacert/clientcert/clientkey in AT+CSSLCFG",
    34: "SSL session could not be opened: check sslversion/authmode and the certificate files",
}

CMQTT_CONNLOST_CAUSES = {1: "socket closed passively", 2: "socket reset", 3: "network closed"}

# +CME ERROR numeric codes (3GPP TS 27.007 §9.2 plus SIMCom's list): the common ones.
CME_ERRORS = {
    0: "phone failure",
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    20: "memory full",
    23: "text string too long",
    30: "no network service",
    31: "network timeout",
    32: "network not allowed - emergency calls only",
    100: "unknown",
    103: "illegal MS",
    106: "illegal ME",
    107: "GPRS services not allowed",
    111: "PLMN not allowed",
    112: "location area not allowed",
    113: "roaming not allowed in this location area",
    132: "service option not supported",
    133: "requested service option not subscribed",
    134: "service option temporarily out of order",
    148: "unspecified GPRS error",
    149: "PDP authentication failure",
}

# +CREG/+CGREG/+CEREG <stat>
REG_STATES = (
    "not registered, not searching",  # 0
    "registered, home network",  # 1
    "not registered, searching",  # 2
    "registration denied",  # 3
    "unknown",  # 4
    "registered, roaming",  # 5
    "registered for SMS only, home",  # 6
    "registered for SMS only, roaming",  # 7
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


def cmqtt_meaning(code):
    if 0 <= code < len(CMQTT_ERRORS):
        return CMQTT_ERRORS[code]
    return "unknown CMQTT error %d" % code


def cme_meaning(code):
    return CME_ERRORS.get(code, "CME error %d" % code)
