# The modem layer's two error families (NetError's code, meaning and kind) and hold(), which keeps
# a rare module loaded while its coroutine runs.
# A module of its own so that the resident drivers (sim7600, tls, cmqtt) and the modules they
# import per use (bringup, certs, cmqtt_rare, cmqtt_svc, cmqtt_ops; net's cellular_rare) share them without
# an import circle.
from core.errors import NetError


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
