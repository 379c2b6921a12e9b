"""The SIM7600 simulator's own protocol facts, written independently of the firmware's modem/codes.py.

Sources: SIMCom SIM7500_SIM7600 Series AT Command Manual V3.00 as summarised in
../shared/reference/sim7600-mqtt-at.md ([M] ch.16 MQTT(S): command ranges from the `=?` forms, §16.3.1
<err> codes), 3GPP TS 27.007 §9.2 (+CME ERROR texts, the subset a SIM7600 prints with AT+CMEE=2, §7.2
registration <stat>), and the seed thread (/work/shared/seed-thread.txt: LE11B02SIM7500A refuses
AT+CSSLCFG). The simulator is an oracle for the firmware: it must never import the firmware's tables, or
the two can be wrong together. host_tests/test_sim_tables.py checks where the two must agree.
"""

# ---- CMQTT limits ([M] ch.16, the `=?` ranges)
TOPIC_MAX = 1024  # AT+CMQTTTOPIC/SUBTOPIC/WILLTOPIC =? (1-1024)
PAYLOAD_MAX = 10240  # AT+CMQTTPAYLOAD =? (1-10240)
CLIENT_ID_MAX = 128  # AT+CMQTTACCQ =? (0-1),(1-128),...
RX_CHUNK_MAX = 1500  # +CMQTTRXPAYLOAD: chunks of at most 1500 bytes
PUB_TIMEOUT_MIN = 60  # AT+CMQTTPUB =? ...,(60-180),...
PUB_TIMEOUT_MAX = 180
CERT_MAX = 10240  # AT+CCERTDOWN =? (5-128),(1-10240)

# ---- +CREG/+CGREG/+CEREG <stat> (3GPP TS 27.007 §7.2)
REG_NOT_SEARCHING = 0
REG_HOME = 1
REG_SEARCHING = 2
REG_DENIED = 3
REG_ROAMING = 5
REG_REGISTERED = (REG_HOME, REG_ROAMING)  # the states in which packet data works

# ---- +CME ERROR: <n> and the text AT+CMEE=2 prints instead (3GPP TS 27.007 §9.2.1/§9.2.2)
CME_TEXT = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",  # early in boot (T-SIM7600X#49)
    15: "SIM wrong",
    16: "incorrect password",
    30: "no network service",
    31: "network timeout",
    100: "unknown",
}

# ---- CMQTT <err> texts ([M] §16.3.1), the codes the simulator answers (the doctor and the firmware
# print these meanings)
CMQTT_TEXT = {
    0: "operation succeeded",
    1: "failed",
    2: "bad UTF-8 string",
    3: "sock connect fail",
    7: "network open fail",
    9: "network not opened",
    10: "client index error",
    11: "no connection",
    12: "invalid parameter",
    14: "client is busy",
    15: "require connection fail",
    17: "timeout",
    19: "client is used",
    20: "client not acquired",
    21: "client not released",
    22: "length out of range",
    23: "network is opened",
    25: "DNS error",
    27: "connection refused: unaccepted protocol version",
    28: "connection refused: identifier rejected",
    29: "connection refused: server unavailable",
    30: "connection refused: bad user name or password",
    31: "connection refused: not authorized",
    32: "handshake fail",
    33: "not set certificate",
    34: "open SSL session failed",
}

# ---- module firmware revisions that refuse AT+CSSLCFG (seed thread: a ONE+ model B from 2019 reports
# +CGMR: LE11B02SIM7500A and answers ERROR to AT+CSSLCFG="sslversion",0,4; LE11B03SIM7600A-H works)
FIRMWARE_NO_SSL = ("LE11B02SIM7500A",)

# ---- AT+CVAUXV=<mV>: the SIM7600's VDD_AUX output (e.g. an active GNSS antenna) is set in millivolts (3050 =
# 3.05 V); AT+CVAUXV=61 is the SIM5360's form (issue 10 #6). Range here 1700-3050 mV: UNVERIFIED against the
# SIMCom manual (not in ../shared/reference); the simulator refuses anything outside it with ERROR.
CVAUXV_MV = (1700, 3050)

# ---- boot (LilyGO T-SIM7600X#100 boot log; the seed thread's PB DONE)
BOOT_URCS = ("RDY", "+CPIN: READY", "SMS DONE", "PB DONE")
POWER_DOWN_URC = "NORMAL POWER DOWN"

# ---- PWRKEY (SIM7600 hardware design: >= 100 ms low turns the module on, >= 2.5 s turns it off; the
# Freematics code presses 200 ms to switch on and 2510 ms to switch off)
POWER_ON_PRESS_MS = 100
POWER_OFF_PRESS_MS = 2500


def cme_text(code):
    """The AT+CMEE=2 text of a +CME ERROR code (KeyError for a code this simulator never answers: a bug)."""
    return CME_TEXT[code]
