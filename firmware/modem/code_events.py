# The errors and events of modem.cmqtt, made when one happens: a failed AT exchange as a CmqttError (at_error,
# number), a command without a session (not_up), a refused topic or payload (arg_error), a dropped incoming
# message (rx_dropped), and the families of <err> codes the recovery asks about. A module read on demand like
# modem/code_texts.py (core.errors.lookup of modem.codes.EVENTS) and apart from it: none of these needs the words
# of the codes (a CmqttError looks them up there only when it is shown), so a failed command during a network cut
# loads ~2 KB and no texts.
from modem import codes
from modem.errors import CmqttError, parse_code


def at_error(self, op, result, e):
    """The CmqttError a failed AT exchange of `op` means (e: an ATError); a REBOOTED one takes the session down, raised."""
    from at.engine import ERROR, REBOOTED, TIMEOUT

    if e.kind == REBOOTED:
        self._set_down("modem rebooted")
        self.started = self.acquired = False
        raise e
    if e.kind == TIMEOUT:
        return CmqttError(op, 17, "no reply from the modem to %s (%s)" % (e.cmd, e.msg))
    n = number(op, result, e)
    if n is None:
        return CmqttError(op, 1, "%s answered ERROR" % e.cmd if e.kind == ERROR else str(e))
    return CmqttError(op, n)


def number(op, result, e):
    """at_error's <err> (its own function: a small block): the ERROR's, its '+<op>: ' line's, the result's."""
    from at.engine import ERROR

    code = e.code if e.kind == ERROR and isinstance(e.code, int) else None
    prefix = "+%s: " % op
    for ln in (getattr(e, "lines", None) or ()) if code is None else ():
        if ln.startswith(prefix):
            code = parse_code(ln[len(prefix) :])
            break
    if code is None and result is not None:
        code = parse_code(getattr(e, "result", None))
    return code


def arg_error(b, what, limit=0):
    """The CmqttArgError for a topic (what: "topic", "will topic") or a payload (what None, at most
    `limit` bytes) that check_topic / check_payload refused."""
    from modem.errors import CmqttArgError

    n = len(b)
    if what is None:
        if n > limit:
            return CmqttArgError("payload is %d bytes, the SIM7600 allows at most %d" % (n, limit), "payload")
        return CmqttArgError("payload is not valid UTF-8 and checkUTF8 is on (set check_utf8=False for binary)", "utf8")
    if not n:
        return CmqttArgError("%s is empty (1..%d bytes)" % (what, codes.TOPIC_MAX), "topic")
    if n > codes.TOPIC_MAX:
        return CmqttArgError("%s is %d bytes, the SIM7600 allows 1..%d" % (what, n, codes.TOPIC_MAX), "topic")
    return CmqttArgError("%s is not valid UTF-8 (MQTT topics must be)" % what, "utf8")


_RX_DROP = (
    "announced topic %d / payload %d bytes, more than this firmware accepts (%d / %d)",
    "out of memory for a %d-byte message",
    "more bytes than announced",
    "over %d bytes (length not announced)",
    "out of memory",
    "no +CMQTTRXSTART",
    "length mismatch: topic %d/%d payload %d/%d",
)


def rx_dropped(self, drop):
    """Log why an incoming message was dropped; drop: (n, args...) from Cmqtt's RX handlers."""
    args = drop[1:] + ((codes.RX_TOPIC_CAP, codes.RX_PAYLOAD_CAP) if drop[0] == 0 else ())
    self.log.warn("incoming message dropped: %s", _RX_DROP[drop[0]] % args if args else _RX_DROP[drop[0]])


def not_up(self, op):
    """Cmqtt._check_up's error: op needs a session and there is none."""
    return CmqttError(op, 11, "not connected (%s)" % (self.last_down or "never connected"))


# Families of <err> codes: the broker's CONNACK refusals (27..31), TLS failures (32 handshake, 33 certificate
# not set, 34 SSL session), and the peer refusing the session at all: 15 "require connection fail" is what a
# broker asking for a client certificate it does not trust (mosquitto require_certificate) gives. Here, not
# with the texts: the connect's recovery asks after every failure (net/cellular_rare.py's fatal, escalate).
def is_refused(code):
    return code is not None and 27 <= code <= 31


def is_tls(code):
    return code is not None and 32 <= code <= 34


def is_config_refusal(code):
    """A CONNACK refusal or a TLS failure: the configuration must change (net/cellular_rare.py's fatal)."""
    return is_refused(code) or is_tls(code)


def is_peer_refusal(code):
    """The broker or the TLS peer refused the session: not a modem fault (keep it registered)."""
    return code == 15 or is_config_refusal(code)


def family(name):
    """One of the predicates above by name (modem.codes / modem.cmqtt's is_refused, is_tls, is_peer_refusal)."""
    return globals()[name]
