# The modem layer's errors: the bring-up's and the TLS set-up's (ModemError, TlsSetupError: NetError's code,
# meaning and kind), those of the modem's MQTT client (CmqttError, CmqttArgError) with its argument checks
# (modem.cmqtt re-exports them), and hold(), which keeps a rare module loaded while its coroutine runs. One
# module (each resident module costs ~150 bytes of heap of its own), imported by the resident drivers
# (sim7600, tls, cmqtt) and by the modules they import per use (bringup, certs, cmqtt_rare, cmqtt_svc,
# cmqtt_ops; net's cellular_rare) without an import circle.
from core.errors import NetError, lookup
from modem import codes
from modem.codes import PAYLOAD_MAX, TOPIC_MAX


class ModemError(NetError):
    """A bring-up step failed. kind: 'not_responding', 'sim', 'apn', 'reg_denied', 'reg_timeout'."""


class TlsSetupError(NetError):
    """TLS set-up failed. kind: 'unsupported' (firmware without SSL), 'upload', 'config', 'no_ca'."""


async def hold(mod, coro):
    """Await coro, a coroutine of the rare module `mod` (imported for the call and already
    forgotten again by core.errors.lookup), with `mod` back in sys.modules while it runs: what the
    coroutine looks up in it again (an error's classification, a nested operation) reuses this copy
    instead of loading a second one. Forgotten again at the end, unless someone else put it back."""
    import sys

    from core.errors import forget

    name = mod.__name__
    mine = name not in sys.modules
    if mine:
        sys.modules[name] = mod
    mod = None  # a finished coroutine keeps its locals: none may hold the module once it returns
    try:
        return await coro
    finally:
        coro = None
        if mine:
            forget(name)


# ---------------------------------------------------------------------------------------
# Errors. Every CMQTT <err> 1..35 raises CmqttError carrying .code, .name ("SockConnectFail" for
# 3), .meaning and .hint, looked up in modem/code_texts.py when one of them (or str()) is first
# read, not when the error is made: an error that is only classified by its code (the recovery's
# escalate, an expected failure) loads no texts, and one that is logged loads them after the
# command's rare modules are gone (the texts are not resident). One class: callers test .code or
# the family predicates (is_refused, is_tls, is_peer_refusal: modem/code_events.py's, reached as
# modem.cmqtt.<name>).


class CmqttError(NetError):
    """A CMQTT <err> from the modem: `.code`, `.name`, `.meaning`, `.hint` (what to do), `.op`
    (the command); str(): NetError's, with the name and the hint."""

    op: str

    def __init__(self, op, code, text=None):
        msg = "%s failed" % op
        if text:
            msg = "%s: %s" % (msg, text)
        super(NetError, self).__init__(msg)  # (Exception's: NetError's would set meaning, a property here)
        self.msg = msg
        self.code = code
        self.kind = None
        self.op = op
        self._w = text  # until a word is read: the text; then (name, meaning, hint)

    def _word(self, i):
        w = self._w
        if not isinstance(w, tuple):
            c = self.code
            w = self._w = ("CmqttError", w or "error", None) if c is None else lookup(codes.TEXTS, "cmqtt_info", c)
        return w[i]

    name = property(lambda self: self._word(0))  # pyright: ignore[reportAssignmentType]
    meaning = property(lambda self: self._word(1))
    hint = property(lambda self: self._word(2))  # pyright: ignore[reportAssignmentType]


def _at_meaning(prefix, code):
    # ATEngine.meaning for ERROR replies with a '+CMQTTxxx: <idx>,<err>' line
    if prefix and prefix.startswith("+CMQTT"):
        return codes.cmqtt_meaning(code)
    return "error %s" % code


class CmqttArgError(ValueError):
    """A topic/payload/client id/argument refused by the driver before anything was sent.
    `kind` says which check: "topic" (empty or too long), "payload" (too long), "utf8" (not valid
    UTF-8), "arg" (any other argument)."""

    def __init__(self, msg, kind="arg"):
        super().__init__(msg)
        self.kind = kind


# ---------------------------------------------------------------------------------------


def _to_bytes(data):
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, memoryview):  # (a status's JSON text on MicroPython, telelogger/statusmsg.py: no copy)
        return data
    return bytes(data)


def _is_utf8(b):
    try:
        str(b, "utf-8")
        return True
    except UnicodeError:
        return False


def check_topic(topic, what="topic"):
    """topic as bytes: 1..codes.TOPIC_MAX bytes of UTF-8, else CmqttArgError ("topic" / "utf8")."""
    b = _to_bytes(topic)
    if not 0 < len(b) <= TOPIC_MAX or not _is_utf8(b):
        raise lookup(codes.EVENTS, "arg_error", b, what)  # the error: modem/code_events.py
    return b


def check_payload(payload, utf8=False, limit=None):
    """payload as bytes: at most `limit` (codes.PAYLOAD_MAX) bytes, valid UTF-8 when `utf8`; else
    CmqttArgError ("payload" / "utf8")."""
    b = _to_bytes(payload)
    if len(b) > (limit or PAYLOAD_MAX) or (utf8 and not _is_utf8(b)):
        raise lookup(codes.EVENTS, "arg_error", b, None, limit or PAYLOAD_MAX)
    return b


def parse_code(text):
    """'0,14' -> 14, '23' -> 23, ' 0' -> 0; None when there is no number."""
    if text is None:
        return None
    t = text.strip()
    if "," in t:
        t = t.split(",")[-1].strip()
    try:
        return int(t)
    except ValueError:
        return None
