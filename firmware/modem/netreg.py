# SIM7600 network registration (sim7600-mqtt-at.md §2): the second half of the bring-up
# (Sim7600.bring_up: modem/bringup.py's boot, then attach here). Boot/recovery only, like
# modem/bringup.py: modem.sim7600.Sim7600 imports this module when one of its steps runs and drops it
# again (Sim7600.__getattr__ -> step(), through core.errors.lookup), so the two halves of a bring-up
# are never in the heap together. Every function takes the Sim7600 (`self`) first; errors are
# modem.errors.ModemError with .kind 'reg_denied' / 'reg_timeout' (made, with their words, by
# modem/code_texts.py's reg_error when registration fails: not in the heap through every bring-up).
#
# Registration waits on the module's own +CREG/+CGREG/+CEREG URCs (enabled with =1), re-querying
# every reg_poll_ms in case a URC line was lost; the total is capped by reg_timeout_ms.
import asyncio

from at.engine import CME, ERROR, ATError
from core.compat import TimeoutError  # noqa: A004 - asyncio's, on both runtimes
from core.errors import lookup
from modem import codes

# The settings of this half a config may give (Sim7600(config=...)): the config's value, else this.
DEFAULTS = {
    "reg_timeout_ms": 120000,  # registration, per bring-up (see modem/sim7600.py for the whole bound)
    "reg_poll_ms": 10000,  # registration: re-query this often while waiting for the URCs
    "poll_ms": 1000,  # the first pause (as modem/bringup.py's)
}


def step(self, name, a):
    """Sim7600.<name>(*a) for the steps that live here (modem.sim7600.Sim7600.__getattr__)."""
    return globals()[name](self, *a)


def _cfg(self, key):
    # a bring-up setting: the config's, else DEFAULTS'
    return self.cfg.get(key, DEFAULTS[key])


# circuit-switched, GPRS and EPS registration: the query, its reply/URC prefix, the command that
# turns the URC on (<n> = 1: +CxREG: <stat> on every change)
REG_QUERIES = (
    ("AT+CREG?", "+CREG:", "AT+CREG=1"),
    ("AT+CGREG?", "+CGREG:", "AT+CGREG=1"),
    ("AT+CEREG?", "+CEREG:", "AT+CEREG=1"),
)


def parse_reg(value):
    """'+CREG: 0,1' value part ('0,1' or '2,1,"1A2B",...' or an unsolicited '1') -> stat int."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        return int(parts[0] if len(parts) == 1 else parts[1])
    except ValueError:
        return None


def reg_verdict(*st):
    """'ok', 'denied' or None (keep waiting) for one set of (CREG, CGREG, CEREG) stats (None = the
    module refused that query). Registered: packet service (CGREG or CEREG; CREG only when
    neither answers) is 1 (home) or 5 (roaming). Denied only when every domain that reports is 3:
    a data-only SIM shows +CREG: 3 beside +CEREG: 1/5 (registered) or 2 (still searching)."""
    ps = [s for s in st[1:] if s is not None]
    if not ps and st[0] is not None:
        ps = [st[0]]
    for s in ps:
        if s in codes.REG_OK:
            return "ok"
    st = [s for s in st if s is not None]
    if st and all(s == codes.REG_DENIED for s in st):
        return "denied"
    return None


async def registration(self):
    """(creg, cgreg, cereg) stats, None for a query the module refused."""
    st = []
    for cmd, p, _ in REG_QUERIES:
        try:
            st.append(parse_reg((await self.at.cmd(cmd, timeout_ms=self.t)).value(p)))
        except ATError as e:
            if e.kind not in (ERROR, CME):
                raise
            st.append(None)
    return tuple(st)


async def wait_registered(self, timeout_ms=None):
    """Until reg_verdict says 'ok'; 'denied' raises at once (kind 'reg_denied'); after timeout_ms
    (cfg reg_timeout_ms) kind 'reg_timeout'. Waits on the module's +CREG/+CGREG/+CEREG: <stat> URCs
    (asked for with =1), re-querying every reg_poll_ms (poll_ms if the module refuses the URCs)."""
    timeout_ms = timeout_ms or _cfg(self, "reg_timeout_ms")
    c = self.clock
    t0 = c.ticks_ms()
    ev = asyncio.Event()

    def on_urc(line, body):  # registration changed: wake the wait below, which re-reads all three
        i = line.find(":")
        self.info["reg_urc"] = (line[1:i], parse_reg(line[i + 1 :].strip()))
        ev.set()

    try:
        await wait(self, ev, await urcs(self, on_urc), timeout_ms, t0)
    finally:
        # the URC handler closes over this module: 'known, ignore' (None) again when the wait ends,
        # so nothing of the bring-up stays referenced from the engine
        for q in REG_QUERIES:
            self.at.on_urc(q[1], None)


# wait_registered's steps, each its own function (each stays a small block of bytecode; their names
# and arguments are names the firmware interns already)
async def urcs(self, on_urc):
    """The +CxREG URCs on (=1): the pause between re-queries (reg_poll_ms; poll_ms if the module
    refuses them all)."""
    pause = _cfg(self, "poll_ms")
    for q in REG_QUERIES:
        self.at.on_urc(q[1], on_urc)
        try:
            await self.at.cmd(q[2], timeout_ms=self.t)
            pause = _cfg(self, "reg_poll_ms")  # the module took at least one
        except ATError as e:
            if e.kind not in (ERROR, CME):
                raise
    return pause


async def wait(self, ev, poll, timeout_ms, t0):
    """The loop: query, verdict, wait for a URC (ev) or the pause (poll ms)."""
    c = self.clock
    while True:
        ev.clear()  # a URC during the queries below makes the next wait return at once
        st = await registration(self)
        self.info["reg"] = st
        v = reg_verdict(*st)
        if v == "ok":
            return
        left = timeout_ms - c.diff(c.ticks_ms(), t0)
        if v == "denied" or left <= 0:
            raise lookup(codes.TEXTS, "reg_error", st, v, timeout_ms)  # its words: on demand
        try:
            await c.wait_for_ms(ev.wait(), min(poll, left))
        except TimeoutError:
            pass


async def cpsi(self):
    """AT+CPSI? -> dict: system, mode, operator, band (where present), rsrp/rsrq/rssi for LTE."""
    try:
        value = (await self.at.cmd("AT+CPSI?", timeout_ms=self.t)).value()
    except ATError as e:
        if e.kind not in (ERROR, CME):
            raise
        return None
    d = None
    if value:
        f = [x.strip() for x in value.split(",")]
        # <System Mode>,<Operation Mode>,<MCC>-<MNC>,...; LTE: field 6 the band, 10..12 RSRQ, RSRP,
        # RSSI in tenths of dB
        d = {"system": f[0], "mode": f[1] if len(f) > 1 else ""}
        lte = f[0] == "LTE" and len(f) >= 13
        for k, i in zip("operator band rsrq rsrp rssi".split(), (2, 6, 10, 11, 12)):
            if i >= len(f) or (i > 2 and not lte):
                break
            try:
                d[k] = int(f[i]) / 10 if i > 6 else f[i]
            except ValueError:
                break
    self.info["cpsi"] = d
    return d


async def attach(self):
    """The second half of Sim7600.bring_up: registration, signal, CPSI, network time. Returns the
    info dict."""
    await wait_registered(self)
    await self.signal_dbm()
    await cpsi(self)
    await self.network_time()
    if self.log:
        self.log.info("modem %s rev %s up: %s", self.model, self.revision, self.info)
    return self.info
