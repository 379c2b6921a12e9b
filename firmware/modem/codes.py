# SIM7600 protocol facts, kept in this one place (SIMCom SIM7500_SIM7600 Series AT
# Command Manual V3.00: ch.16 MQTT(S) §16.3.1, ch.10 SSL, 3GPP TS 27.007 for +CME).
# The firmware and the transcript doctor read these tables.
#
# RAM: only the numbers live here. The texts (CMQTT error meanings and hints, CONNLOST causes,
# registration states, the no-SSL fix) and the functions that read them are in
# modem/code_texts.py, the 3GPP CME texts in at/cme.py: table modules imported when an error has
# to be explained and dropped again (core.errors.lookup). Everything else is reached through the
# module __getattr__ (PEP 562, which MicroPython supports too): the functions codes.cmqtt_info,
# cmqtt_meaning, cmqtt_hint, connlost_cause, cme_meaning, reg_state, and for host tools and tests
# the whole tables, built on each access: codes.CMQTT_ERRORS, CMQTT_HINTS, CME_ERRORS,
# CMQTT_CONNLOST_CAUSES, REG_STATES, FIRMWARE_NO_SSL_FIX, BOOT_URCS, UNSOLICITED, and the limits no
# device code reads (CMQTT_ERROR_COUNT, RX_CHUNK_MAX: modem/code_texts.py).
from core.errors import lookup

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
PUB_TIMEOUT_MIN = 60
PUB_TIMEOUT_MAX = 180
CERT_MAX = 10240
# Incoming messages: the largest payload / topic this firmware accepts (announced by
# +CMQTTRXSTART: <idx>,<topic_len>,<payload_len>); a larger one is dropped before any byte of it is
# buffered. Remote commands are a few hundred bytes; 2048 leaves room without letting a retained
# or hostile message fill the heap before it is authenticated.
RX_PAYLOAD_CAP = 2048
RX_TOPIC_CAP = 256

# the table module of the words and the one of modem.cmqtt's errors and events (imported per use): the one
# copy of each name for the resident modem modules (a literal this long is a str of its own in every module
# that spells it)
TEXTS = "modem.code_texts"
EVENTS = "modem.code_events"


def __getattr__(name):
    # the functions that explain a code (cmqtt_info, cmqtt_meaning, cmqtt_hint, connlost_cause,
    # cme_meaning, reg_state) and the whole tables: modem/code_texts.py, imported for the access
    # and dropped again (a function keeps it alive while it runs)
    return lookup(TEXTS, "attr", name)
