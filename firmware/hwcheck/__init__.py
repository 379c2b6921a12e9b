# Board bring-up check: one line per item, PASS/FAIL/WARN/SKIP/INFO, with the fix for each failure.
#
# On the device (after deploying, over USB):
#   mpremote connect /dev/ttyUSB0 exec "import hwcheck; hwcheck.main()"
# (scripts/hwcheck.py --port /dev/ttyUSB0 does exactly that.) On the host, scripts/hwcheck.py
# --modem/--obd/--gps builds a board.host.HostBoard and calls the same run().
#
#   items = run(board, cfg=None, out=print, timeout_ms=10000, reg_timeout_ms=60000,
#                     gnss_timeout_ms=60000, power_on=True, gnss=None, board_known=True)
#   -> [(status, name, detail, fix), ...]   fix is None unless status is FAIL/WARN/SKIP
#
# RAM: this module is only the runner. Each check area is a module of this package with one class
# (AREAS below), imported, run in its own event loop and dropped from sys.modules before the next,
# with the drivers it imported (an area that talks to the modem opens its own AT engine instance on
# the modem's port; only the engine's modules stay imported across the modem areas). The heap holds
# one area plus the drivers it needs: the whole check runs in a stock ESP32's 96 KB (measured on the
# 32-bit unix port with the .mpy loaded into the heap: passes at 94K). Between areas only plain
# values are kept (devType, modem model, SIM/registration state, ...).
#
# Items, in order: board file (INFO: unverified pins), board model (co-processor ATI -> devType ->
# model, compared with the deployed board description), OBD protocol, battery, modem (present and
# powered: powered on with the power key when it is silent), modem model (model, firmware, MQTT over
# SSL possible), SIM, signal, registration, data (APN, PDP context, the modem's MQTT service), DNS
# (of broker.host), TLS (certificates, SSL context), broker (CONNECT with the configured TLS and
# credentials), publish (a test message on <prefix>/<id>/status), GNSS fix. An item whose driver is
# missing, or that depends on one that failed, is SKIP ("not checked"), never PASS. No item prints a traceback: an
# exception becomes one FAIL line naming the item it happened in.
import gc
import sys

from hwcheck.common import (  # noqa: F401 - the runner's names, re-exported for callers and tests
    FAIL, HOST_BOARD, INFO, NAME_W, PASS, SKIP, WARN, _MP, bad_text, cfg_get, drop_module, drop_new, err_text,
    format_item, why)

# (module, class, its first item), run in this order, each in its own event loop: whatever an area
# started (the AT reader, timeouts, exchanges still running) ends with its loop, so its modules can
# be freed. The co-processor areas come first (devType before the modem's UART opens).
AREAS = (
    ("hwcheck.coproc", "CoprocCheck", "board model"),  # board file, board model
    ("hwcheck.obd_link", "ObdCheck", "OBD protocol"),  # OBD protocol
    ("hwcheck.battery", "BatteryCheck", "battery"),  # battery
    ("hwcheck.modem_id", "ModemCheck", "modem"),  # modem, modem model
    ("hwcheck.cellular", "CellularCheck", "SIM"),  # SIM, signal, registration
    ("hwcheck.data", "DataCheck", "data"),  # data (APN, PDP context, MQTT service)
    ("hwcheck.dns", "DnsCheck", "DNS"),  # DNS of broker.host
    ("hwcheck.tls_setup", "TlsCheck", "TLS"),  # TLS (certificates, SSL context)
    ("hwcheck.broker", "BrokerCheck", "broker"),  # broker, publish
    ("hwcheck.gnss_fix", "GnssCheck", "GNSS fix"),  # GNSS fix (last: the modem's GNSS or the co-processor's)
)
# The AT engine's modules stay imported from the first area that talks to the modem to the last
# (each area still runs its own engine instance): loaded once, they do not fragment the heap again
# and again, and the drivers re-imported in each area share their exception classes.
_MODEM_CORE = ("at", "at.engine", "at.lines", "at.reader", "modem", "modem.codes", "net", "net.publisher")
_LAST_MODEM_AREA = "hwcheck.gnss_fix"
class Check:
    """What every area shares: the board, config, options, the item list and the few results a
    later area depends on. The areas (hwcheck/<area>.py) add items through add()."""

    def __init__(self, board, cfg=None, out=print, timeout_ms=10000, reg_timeout_ms=60000, gnss_timeout_ms=60000,
                 power_on=True, gnss=None, board_known=True, clock=None, power_timing=None):
        self.board = board
        self.cfg = cfg or {}
        self.out = out
        self.timeout_ms = timeout_ms
        self.reg_timeout_ms = reg_timeout_ms
        self.gnss_timeout_ms = gnss_timeout_ms
        self.power_on = power_on
        self.gnss = gnss
        self.board_known = board_known
        if clock is None:
            clock = getattr(board, "clock", None)
        if clock is None:
            from core.compat import DEFAULT_CLOCK

            clock = DEFAULT_CLOCK
        self.clock = clock
        self.power_timing = power_timing
        self.items = []
        self.step = None  # the item being checked: named by the FAIL line of an exception
        self.at = None  # at.engine.ATEngine of the area running (open_modem)
        self.modem = None  # modem.sim7600.Sim7600 on that engine
        self.modem_ok = None  # True once the modem answered AT
        self.modem_id = None  # type: tuple | None  # (model, revision) from the modem model item
        self.coproc = None  # True once the co-processor answered ATI
        self.sim_ok = None
        self.registered = None
        self.apn_error = None  # why the APN (cellular.apn) was refused, for the data item
        self.wifi = None  # transport wifi: the data and broker items are not checked
        self.mqtt_started = None  # the data item started the modem's MQTT service (the broker area stops it)
        self.dns_ok = None  # broker.host resolves (or could not be checked)
        self.authmode = None  # the SSL context the TLS item configured (broker.tls on)

    def add(self, status, name, detail, fix=None):
        if status not in (FAIL, WARN, SKIP):
            fix = None
        self.items.append((status, name, detail, fix))
        self.out(format_item(status, name, detail, fix))

    # ---- helpers the areas share -----------------------------------------------------------------
    def missing_path(self, role):
        """On a host board: the flag to pass when no serial path was given for `role`, else None."""
        paths = getattr(self.board, "paths", None)
        if isinstance(paths, dict) and not paths.get(role):
            return {"modem": "--modem", "coproc": "--obd", "gnss": "--gps"}[role]
        return None

    def absent(self, role, name):
        """A SKIP line when the board has no `role` (or, on the host, no path for it); True then."""
        b = self.board
        if not b.has(role):
            self.add(SKIP, name, "not checked: board %s has no %s" % (b.name, role), "set '%s' in the board file if one is wired" % role)
            return True
        flag = self.missing_path(role)
        if flag:
            self.add(SKIP, name, "not checked: no %s PATH" % flag)
            return True
        return False

    def need(self, mod, name, folder):
        """The driver module, or None after a SKIP line saying it is missing."""
        try:
            __import__(mod)
            m = sys.modules.get(mod)
            if m is None:
                raise ImportError("no module named %s" % mod)
            return m
        except ImportError as e:
            self.add(SKIP, name, "not checked: %s not available (%s)" % (mod, e), "deploy the whole firmware (%s)" % folder)
            return None

    def skip_modem(self, name):
        if not self.board.has("modem") or self.missing_path("modem"):
            self.add(SKIP, name, "not checked (no modem)")
        else:
            self.add(SKIP, name, "not checked (modem not answering)")

    def obd(self, name):
        """A fresh obdii.obd.Obd on the co-processor's port (each area opens its own: nothing of
        obdii stays in RAM between areas), or None after a SKIP line."""
        elm = self.need("obdii.elm", name, "obdii/")
        obdm = elm and self.need("obdii.obd", name, "obdii/")
        if elm is None or obdm is None:
            return None
        return obdm.Obd(elm.ElmLink(self.board.obd_stream(), self.clock))

    def open_modem(self, name, sim=True):
        """A fresh AT engine on the modem's port for this area (c.at; stopped when the area ends)
        and, with sim, a modem.sim7600.Sim7600 on it (c.modem); None after a SKIP line. The modem
        itself stays as the areas before left it (powered, echo off, SIM unlocked, APN set)."""
        eng = self.need("at.engine", name, "at/")
        if eng is None:
            return None
        if sim:
            sim = self.need("modem.sim7600", name, "modem/")
            if sim is None:
                return None
        self.at = at = eng.ATEngine(self.board.modem_stream(), self.clock)
        at.start()
        if not sim:
            return at
        t = self.timeout_ms
        cfg = self.cfg
        self.modem = m = sim.Sim7600(at, self.clock, {
            "sim_pin": cfg_get(cfg, "cellular", "sim_pin") or "",
            "apn": cfg_get(cfg, "cellular", "apn") or "",
            "apn_user": cfg_get(cfg, "secrets", "apn_user") or "",
            "apn_pass": cfg_get(cfg, "secrets", "apn_pass") or "",
            "boot_timeout_ms": t,
            "sim_timeout_ms": t,
            "cmd_timeout_ms": min(5000, t),
            "poll_ms": 500,
        })
        if self.modem_id:
            m.model, m.revision = self.modem_id
        return m

    def modem_area(self, name, sim=True):
        """For the items after the modem item: open_modem(), or None after a SKIP line when the
        modem did not answer."""
        if not self.modem_ok:
            self.skip_modem(name)
            return None
        return self.open_modem(name, sim)

    def close_modem(self):
        if self.at is not None:
            try:
                self.at.stop()
            except Exception:
                pass
        self.at = None
        self.modem = None

    # ---- all -----------------------------------------------------------------------------------
    def run(self):
        """Every area in turn, each imported, run in its own event loop and dropped (with the
        drivers it imported) before the next."""
        import asyncio

        base = set(sys.modules)
        for mod, cls, first in AREAS:
            n = len(self.items)
            self.step = first  # an area that fails to import (MemoryError) is named by its first item
            try:
                asyncio.run(self._area(asyncio, mod, cls))
            except Exception as e:  # a bug or MemoryError in one area must not hide the others
                self.close_modem()
                gc.collect()
                last = self.items[-1] if len(self.items) > n else None
                if last is None or last[0] != FAIL or last[1] != self.step:
                    self.add(FAIL, self.step, "check crashed: %s: %s" % (type(e).__name__, why(e)),
                             "out of RAM: stop other code (a telelogger started by main.py: create /safe_mode and "
                             "reset), then retry" if isinstance(e, MemoryError) else "report this output")
            if _MP:
                asyncio.new_event_loop()  # tasks the area left behind go with their loop
            if mod == _LAST_MODEM_AREA:
                keep = base
            else:
                keep = base | set([m for m in _MODEM_CORE if m in sys.modules])
            drop_new(keep)
        return self.items

    async def _area(self, asyncio, mod, cls):
        # the area runs in a task of its own: a finished task lets go of its coroutine, while the
        # loop's main task (asyncio.core.cur_task on MicroPython) would keep it, and through its
        # frame the area's drivers, alive until the next area runs
        await asyncio.create_task(self._area_task(mod, cls))

    async def _area_task(self, mod, cls):
        try:
            __import__(mod)
            await getattr(sys.modules[mod], cls)(self).run()
        finally:
            self.close_modem()

    def close(self):
        self.close_modem()

    def summary(self):
        n = len([i for i in self.items if i[0] != INFO])
        bad = len([i for i in self.items if i[0] == FAIL])
        return "hwcheck: %d checks, %d failed" % (n, bad)


def run(board, cfg=None, out=print, timeout_ms=10000, reg_timeout_ms=60000, gnss_timeout_ms=60000,
        power_on=True, gnss=None, board_known=True, clock=None, power_timing=None, summary=True):
    """Check the board item by item, printing one line each through `out`; returns the list of
    (status, name, detail, fix). Runs its own event loops (one per area): call it outside one.
    power_on: press the modem's power key when it does not answer (False on a host, where the
    power pin is a fake and a USB modem powers itself). gnss: the source to check (default: config
    gnss.source, else the board's). board_known: compare the co-processor's devType with the board
    description (False when the board was only guessed)."""
    c = Check(board, cfg, out, timeout_ms, reg_timeout_ms, gnss_timeout_ms, power_on, gnss, board_known, clock, power_timing)
    try:
        c.run()
    finally:
        c.close()
    if summary:
        out(c.summary())
    return c.items


def failed(items):
    return [i for i in items if i[0] == FAIL]


def main(argv=None, board=None, cfg=None, timeout_ms=10000, reg_timeout_ms=60000, gnss_timeout_ms=60000,
         gnss=None, power_on=None, out=print):
    """On the device: `import hwcheck; hwcheck.main()` (the deployed /board.json and config.json).
    On the unix port: `micropython -c "import hwcheck; hwcheck.main()" --modem PATH --obd PATH
    [--board NAME] [--timeout S] [--reg-timeout S] [--gnss-timeout S] [--gnss SRC] [--config F]
    [--secrets F]`. Returns the number of failed items."""
    from hwcheck import setup  # arguments, board and config: needed before the areas only

    a = setup.prepare(argv, board, cfg, [timeout_ms, reg_timeout_ms, gnss_timeout_ms], gnss, power_on, out)
    drop_module("hwcheck.setup")
    setup = None
    if a is None:
        out("hwcheck: 1 checks, 1 failed")
        return 1
    own = board is None
    board, cfg, t, gnss, power_on, known = a
    a = None
    gc.collect()
    try:
        items = run(board, cfg, out, t[0], t[1], t[2], power_on, gnss, known)
    finally:
        if own:
            board.close()
    return len(failed(items))
