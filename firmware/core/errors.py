# The error bases every layer shares, the on-demand lookup of error texts, and forgetting the modules
# imported for one job (forget, drop: below).
#
# RAM: error meanings and hints are data in small table modules (at/cme.py, modem/cmqtt_text.py)
# that are imported only when an error happens and removed from sys.modules straight after, so
# their strings do not stay resident on the ESP32.

import sys


class NetError(Exception):
    """A transport failure. `code` is the transport's own code (CMQTT <err>, MQTT rc, errno) or None,
    `meaning` says what it is; str() gives the whole story. `kind`: the failure's family where a
    subclass names them (modem.errors.ModemError, TlsSetupError), else None. `name` and `hint`:
    the code's name and what to do, where the transport's table gives them (modem.cmqtt's
    CmqttError: "msg (error 3: meaning) [SockConnectFail]; hint")."""

    name = None  # type: str | None
    hint = None  # type: str | None

    def __init__(self, msg, code=None, meaning=None, kind=None):
        super().__init__(msg)
        self.msg = msg
        self.code = code
        self.meaning = meaning
        self.kind = kind

    def __str__(self):
        s = self.msg
        if self.code is not None:
            s += " (error %s: %s)" % (self.code, self.meaning)  # (a shorter str constant than "%s (error ...")
        if self.name:
            s = "%s [%s]" % (s, self.name)
        if self.hint:
            s = "%s; %s" % (s, self.hint)
        return s


class NotConnected(NetError):
    pass


def lookup(mod, fn, *args):
    """mod.fn(*args) with `mod` (a table module) imported for the call and dropped afterwards:
    neither sys.modules nor its package keeps it, so its strings are freed by the next collect."""
    had = mod in sys.modules
    m = __import__(mod, None, None, (fn,))
    try:
        return getattr(m, fn)(*args)
    finally:
        if not had:
            forget(mod)


# ---- forgetting modules that were imported for one job (boot, validation, a bring-up, a table lookup),
# so their bytecode can be collected: on a stock ESP32 every imported .mpy lives in the heap. The one
# place that knows how: out of sys.modules AND off the parent package (MicroPython keeps a submodule as
# an attribute of its package, which alone would keep it alive). Here, not in a module of their own: a
# resident module costs ~150 bytes by itself.


def forget(name):
    """Forget module `name` (dotted): sys.modules and the attribute its parent package holds."""
    sys.modules.pop(name, None)
    parent, _, attr = name.rpartition(".")
    pkg = sys.modules.get(parent) if parent else None
    if pkg is not None and getattr(pkg, attr, None) is not None:
        try:
            delattr(pkg, attr)
        except (AttributeError, TypeError):
            pass


def drop(prefix, keep=()):
    """Forget the modules named prefix* that are not in keep."""
    for name in list(sys.modules):  # a copy: forget() changes sys.modules
        if name.startswith(prefix) and name not in keep:
            forget(name)
