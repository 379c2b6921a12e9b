# SIM7600 network state over an ATEngine (sim7600-mqtt-at.md §2, §4): what stays resident.
#
#   modem = Sim7600(at, clock, config)       # config: dict (cellular section + secrets): cmd_timeout_ms
#                                            # and the bring-up's settings (modem/bringup.py's and
#                                            # modem/netreg.py's DEFAULTS)
#   info = await modem.bring_up()            # boot, ATE0, identify, CMEE, SIM, CTZU, APN, registration
#   modem.model, modem.revision, modem.ssl_supported()
#   await modem.signal_dbm()                 # CSQ -> dBm or None (99 = unknown)
#   await modem.network_time()               # CCLK -> (y, mo, d, h, mi, s, tz_quarters) or None
#
# The bring-up steps live in modem/bringup.py (wait_ready, identify, sim_ready, set_apn; boot: the
# first half of bring_up) and modem/netreg.py (registration, wait_registered, cpsi; attach: the
# second half): each module is imported when one of its steps starts and dropped from sys.modules
# again (boot and recovery only; Sim7600.__getattr__), so bring_up() has one half in the heap at a
# time. network_time() (AT+CCLK?, asked until UTC is known) is modem/nettime.py's, the same way.
# Errors: one class, ModemError, whose .kind names the step ('not_responding', 'sim', 'apn',
# 'reg_denied', 'reg_timeout').
#
# Bound of one bring-up: boot_timeout_ms 30 s + sim_timeout_ms 20 s + reg_timeout_ms 120 s +
# about 14 commands of at most cmd_timeout_ms 5 s: under 4 min, well inside the 900 s heartbeat.
from core.compat import DEFAULT_CLOCK
from core.errors import lookup
from modem.codes import FIRMWARE_NO_SSL
from modem.errors import ModemError  # noqa: F401 - re-exported: the bring-up's error

CMD_TIMEOUT_MS = 5000  # every AT exchange of the steady state and the bring-up (cfg cmd_timeout_ms)


def csq_to_dbm(n):
    """+CSQ <rssi> n 0..31 -> dBm (-113 + 2*n); 99 (and anything outside 0..31) -> None."""
    if n is None or n < 0 or n > 31:
        return None
    return -113 + 2 * n


class Sim7600:
    """The modem's steady state: signal_dbm(), network_time(), ssl_supported(), and bring_up(). The
    bring-up steps (boot, wait_ready, identify, sim_ready, set_apn: modem/bringup.py; attach,
    registration, wait_registered, cpsi: modem/netreg.py) and network_time (modem/nettime.py) are
    found by __getattr__ (the step() of their module), the module imported for the call and dropped
    when it returns."""

    # besides these: at, clock, log
    cfg: dict  # the settings given (None left out); modem/bringup.py's and modem/netreg.py's DEFAULTS the rest
    t: int  # cmd_timeout_ms
    model: "str | None"
    revision: "str | None"
    imei: "str | None"
    info: dict  # what bring-up and the steady state learnt: reg, signal_dbm, time, ...

    def __init__(self, at, clock=None, config=None, log=None):
        # resident (not bringup's): the publisher is built on the boot peak, where importing
        # modem/bringup.py for these few lines is what does not fit
        self.at = at
        self.clock = clock or DEFAULT_CLOCK
        self.cfg = cfg = {}  # the settings given; the steps' DEFAULTS have the rest (read when a step runs)
        if config:
            for k in config:
                if config[k] is not None:
                    cfg[k] = config[k]
        self.t = cfg.get("cmd_timeout_ms") or CMD_TIMEOUT_MS
        self.log = log
        self.model = None
        self.revision = None
        self.imei = None
        self.info = {}

    def __getattr__(self, name):
        # the bring-up steps (modem/bringup.py's, modem/netreg.py's) and the network time
        # (modem/nettime.py's), imported when one is called
        if name in ("boot", "wait_ready", "identify", "sim_ready", "set_apn"):
            mod = "modem.bringup"
        elif name in ("attach", "registration", "wait_registered", "cpsi"):
            mod = "modem.netreg"
        elif name == "network_time":
            mod = "modem.nettime"
        else:
            raise AttributeError(name)
        return lambda *a: lookup(mod, "step", self, name, a)

    async def bring_up(self):
        """Boot wait, ATE0, identify, CMEE=2, SIM, CTZU=1, APN (modem/bringup.py's boot), then
        registration, signal, CPSI, network time (modem/netreg.py's attach): each half's module
        loaded for it and dropped, never both at once. Returns the info dict; raises ModemError
        (.kind) with what to fix."""
        await self.boot()
        return await self.attach()

    def ssl_supported(self):
        """False for firmware known to refuse AT+CSSLCFG (codes.FIRMWARE_NO_SSL). Resident: the TLS
        set-up asks while certs and the connect path are loaded (no bring-up module on top)."""
        for bad in FIRMWARE_NO_SSL:
            if bad in (self.revision or ""):
                return False
        return True

    # ------------------------------------------------------------------ steady state
    async def signal_dbm(self):
        r = await self.at.cmd("AT+CSQ", timeout_ms=self.t)
        v = r.value()  # +CSQ: <rssi>,<ber>
        try:
            rssi = int(v.split(",")[0])
        except (AttributeError, ValueError):
            return None
        dbm = csq_to_dbm(rssi)
        self.info["signal_dbm"] = dbm
        return dbm
