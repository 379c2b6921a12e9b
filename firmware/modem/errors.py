# The modem layer's two error families and the unloader of its boot-only modules. A module of its
# own so that the resident drivers (sim7600, tls) and the modules they import per use (bringup,
# certs) share them without an import circle.
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
