# The service of the modem's MQTT client (modem.cmqtt.Cmqtt) stopped and started again: the clean-up of a
# stale or wedged service (DISC, REL, STOP), STOP, the reset after +CMQTTNONET (the clean-up, then START),
# REL. The recovery's service level (net/cellular_rare.py) and START's stale-service case (modem/cmqtt_rare.py)
# need only these, so they are a module of their own rather than part of modem/cmqtt_ops.py (the will,
# several topics, UNSUBSCRIBE, DISC, the state query, a refused ACCQ): one of the recovery's heap peaks was a
# service reset with all of them loaded. Reached as modem/cmqtt_ops.py is: Cmqtt.__getattr__ -> call() and
# core.errors.lookup, imported for the call and dropped again (an operation keeps it imported while it runs:
# modem.errors.hold). Every function takes the Cmqtt first and takes its lock where the operation needs it.
import sys

from modem.errors import CmqttError, hold

_SELF = sys.modules[__name__]


def call(self, name, a, k):
    """Cmqtt.<name>(*a, **k) for the operations that live here (modem.cmqtt.Cmqtt.__getattr__)."""
    return hold(_SELF, globals()[name](self, *a, **k))


async def cleanup(self):
    """Best effort: leave the modem's MQTT service stopped. Errors are expected here."""
    # they are ignored, so nothing words them: a CmqttError looks its words up only when they are
    # read, and the engine's at.meaning, which would load modem/code_texts.py for the ERROR after
    # '+CMQTTDISC: 0,11' (a meaning _cmd drops: it makes the CmqttError from the code), is off
    # meanwhile (every CMQTT command waits for this lock; other commands' meaning is 'error <code>'
    # either way)
    at = self.at
    meaning, at.meaning = at.meaning, None
    try:
        for cmd, res in (
            ("AT+CMQTTDISC=%d,60" % self.idx, "+CMQTTDISC: %d," % self.idx),
            ("AT+CMQTTREL=%d" % self.idx, None),
            ("AT+CMQTTSTOP", "+CMQTTSTOP: "),
        ):
            try:
                self.disc_in_flight = res is not None and res.startswith("+CMQTTDISC")
                await self._cmd(None, cmd, result=res, result_timeout_ms=70000, busy_retries=1)
            except CmqttError:
                pass
            finally:
                self.disc_in_flight = False
    finally:
        at.meaning = meaning
    self._connected = False
    self.acquired = False
    self.started = False


async def stop(self):
    async with self._lock:
        await self._cmd(None, "AT+CMQTTSTOP", result="+CMQTTSTOP: ")
        self.started = False


async def reset_service(self):
    """DISC/REL/STOP then START: recovery after +CMQTTNONET or a wedged client."""
    async with self._lock:
        await cleanup(self)
        await self._cmd(None, "AT+CMQTTSTART", result="+CMQTTSTART: ")
        self.started = True
        self.nonet = False


async def release(self):
    async with self._lock:
        await self._cmd(None, "AT+CMQTTREL=%d" % self.idx)
        self.acquired = False
