# The modem layer's two error families and the unloader of its boot-only modules (unload, hold).
# A module of its own so that the resident drivers (sim7600, tls, cmqtt) and the modules they
# import per use (bringup, certs, cmqtt_rare, cmqtt_ops; net's cellular_rare) share them without
# an import circle.
from core.errors import NetError


class ModemError(NetError):
    """A bring-up step failed. kind: 'not_responding', 'sim', 'apn', 'reg_denied', 'reg_timeout'."""

    def __init__(self, msg, code=None, meaning=None, kind=None):
        NetError.__init__(self, msg, code, meaning)
        self.kind = kind


class TlsSetupError(NetError):
    """TLS set-up failed. kind: 'unsupported' (firmware without SSL), 'upload', 'config', 'no_ca'."""

    def __init__(self, msg, code=None, meaning=None, kind=None):
        NetError.__init__(self, msg, code, meaning)
        self.kind = kind


def unload(name):
    """Drop modem.<name> from sys.modules and from the package (MicroPython keeps a submodule as
    an attribute of its package): its bytecode is freed once nothing uses it."""
    from core.unload import forget

    forget("modem." + name)


async def hold(mod, coro):
    """Await coro, a coroutine of the rare module `mod` (imported for the call and already
    forgotten again by core.errors.lookup), with `mod` back in sys.modules while it runs: what the
    coroutine looks up in it again (an error's classification, a nested operation) reuses this copy
    instead of loading a second one. Forgotten again at the end, unless someone else put it back."""
    import sys

    from core.unload import forget

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
