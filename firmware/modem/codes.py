# SIM7600 protocol facts, kept in this one place (SIMCom SIM7500_SIM7600 Series AT
# Command Manual V3.00: ch.16 MQTT(S) §16.3.1, ch.10 SSL, 3GPP TS 27.007 for +CME).
# The firmware and the transcript doctor read these tables.
#
# RAM: only the numbers live here. The texts (CMQTT error meanings and hints, CONNLOST causes,
# registration states, the no-SSL fix) are in modem/code_texts.py and the 3GPP CME texts in
# at/cme.py: table modules imported by the functions below when an error has to be explained and
# dropped again (core.errors.lookup). Host tools and tests that want a whole table get it built
# on demand through the module __getattr__ (PEP 562, which MicroPython supports too):
# codes.CMQTT_ERRORS, codes.CMQTT_HINTS, codes.CME_ERRORS, codes.CMQTT_CONNLOST_CAUSES,
# codes.REG_STATES, codes.FIRMWARE_NO_SSL_FIX, codes.BOOT_URCS, codes.UNSOLICITED.
from core.errors import lookup

CMQTT_ERROR_COUNT = 36  # <err> 0..35

REG_OK = (1, 5)
REG_DENIED = 3

# +CPIN: states that need the user (anything but READY)
CPIN_READY = "READY"

# Modem firmware revisions (AT+CGMR / ATI Revision) known to refuse AT+CSSLCFG="sslversion"
# (seed thread: LE11B02SIM7500A on a ONE+ model B answers ERROR; fixed by LE11B03SIM7600A-H).
FIRMWARE_NO_SSL = ("LE11B02SIM7500A",)

# CMQTT limits ([M] ch.16)
TOPIC_MAX = 1024
PAYLOAD_MAX = 10240
CLIENT_ID_MAX = 128
RX_CHUNK_MAX = 1500
PUB_TIMEOUT_MIN = 60
PUB_TIMEOUT_MAX = 180
CERT_MAX = 10240
# Incoming messages: the largest payload / topic this firmware accepts (announced by
# +CMQTTRXSTART: <idx>,<topic_len>,<payload_len>); a larger one is dropped before any byte of it is
# buffered. Remote commands are a few hundred bytes; 2048 leaves room without letting a retained
# or hostile message fill the heap before it is authenticated.
RX_PAYLOAD_CAP = 2048
RX_TOPIC_CAP = 256

_T = "modem.code_texts"


def cmqtt_info(code):
    """(name, meaning, hint) of CMQTT <err> `code`."""
    return lookup(_T, "cmqtt_info", code)


def cmqtt_meaning(code):
    if isinstance(code, int) and 0 <= code < CMQTT_ERROR_COUNT:
        return lookup(_T, "line", "CMQTT", code)
    return "unknown CMQTT error %s" % code


def cmqtt_hint(code):
    return lookup(_T, "keyed", "HINTS", code) if isinstance(code, int) else None


def connlost_cause(cause):
    return (lookup(_T, "keyed", "CONNLOST", cause) if isinstance(cause, int) else None) or "unknown cause %s" % cause


def cme_meaning(code):
    return (lookup("at.cme", "meaning", code) if isinstance(code, int) else None) or "CME error %s" % code


def reg_state(stat):
    return lookup(_T, "line", "REG", stat) or "unknown state %s" % stat


_TABLES = {
    "CMQTT_ERRORS": "CMQTT",
    "CMQTT_HINTS": "HINTS",
    "CMQTT_CONNLOST_CAUSES": "CONNLOST",
    "REG_STATES": "REG",
    "FIRMWARE_NO_SSL_FIX": "FIRMWARE_NO_SSL_FIX",
}


def __getattr__(name):
    # whole tables for host tools and tests; built on each access, so firmware uses the functions
    if name in _TABLES:
        return lookup(_T, "get", _TABLES[name])
    if name == "CME_ERRORS":
        return lookup("at.cme", "table")
    if name in ("BOOT_URCS", "UNSOLICITED"):
        from at import engine

        return getattr(engine, name)
    raise AttributeError(name)
