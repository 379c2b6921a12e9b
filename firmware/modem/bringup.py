# SIM7600 bring-up (sim7600-mqtt-at.md §2): boot wait, identify, SIM, APN, registration.
# Boot/recovery only: modem.sim7600.Sim7600 imports this module when a step runs and drops it
# from sys.modules again (Sim7600.__getattr__ -> step(), through core.errors.lookup), so none of
# it stays resident. Every function
# takes the Sim7600 (`self`) (its at, clock, cfg, info) first; errors are modem.sim7600.ModemError
# with .kind saying which step failed.
#
# Every wait is bounded, and every wait is for a reply: polling loops send a command, read its
# reply and pause poll_ms between attempts; the total is capped by a *_timeout_ms. Registration
# waits on the module's own +CREG/+CGREG/+CEREG URCs (enabled with =1), re-querying every
# reg_poll_ms in case a URC line was lost. Boot URCs (RDY, +CPIN: READY, SMS DONE, PB DONE) are
# URCs to the engine: never answers here.
#
# Names (MicroPython interns every identifier and every string literal of <= 10 characters, for
# good): short commands and reply prefixes are written as one longer literal split where they are
# used ('cmd, p = "AT+CPIN? +CPIN:".split()'), a plain string freed with this module; the helpers
# are few.
import asyncio

from at.engine import ATCommandError, ATError, CMEError
from core.compat import TimeoutError  # noqa: A004 - asyncio's, on both runtimes
from modem import codes
from modem.errors import ModemError

# Settings a config may give (Sim7600(config=...)); cmd_timeout_ms is modem.sim7600's (Sim7600.t).
DEFAULTS = {
    "apn": "",  # empty: leave the module's automatic APN alone
    "apn_user": "",
    "apn_pass": "",
    "sim_pin": "",
    "boot_timeout_ms": 30000,  # AT answered with OK
    "sim_timeout_ms": 20000,  # SIM busy -> READY
    "reg_timeout_ms": 120000,  # registration, per bring-up (see modem/sim7600.py for the whole bound)
    "poll_ms": 1000,  # pause between polls
    "reg_poll_ms": 10000,  # registration: re-query this often while waiting for the URCs
}


def step(self, name, a):
    """Sim7600.<name>(*a) for the steps that live here (modem.sim7600.Sim7600.__getattr__)."""
    return globals()[name](self, *a)


def _cfg(self, key):
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


async def wait_ready(self, timeout_ms=None):
    """Send AT until the module answers OK (boot URCs are dropped by the engine)."""
    timeout_ms = timeout_ms or _cfg(self, "boot_timeout_ms")
    c = self.clock
    t0 = c.ticks_ms()
    last = None
    while True:
        try:
            await self.at.cmd("AT", timeout_ms=min(1000, timeout_ms))
            return
        except ATError as e:  # timeout, garbage, ERROR while booting, reboot
            last = e
        if c.diff(c.ticks_ms(), t0) >= timeout_ms:
            raise ModemError("modem did not answer AT within %d ms (last: %s)" % (timeout_ms, last), kind="not_responding")
        await c.sleep_ms(_cfg(self, "poll_ms"))


async def identify(self):
    """ATI + AT+CGMR: model and firmware revision (and IMEI)."""
    ati, cgmr = "ATI AT+CGMR".split()
    r = await self.at.cmd(ati, timeout_ms=self.t)
    for ln in r.lines:  # Manufacturer: / Model: / Revision: / IMEI: ...
        k, _, v = ln.partition(":")
        k = k.lower()
        if k == "model" or k == "revision" or k == "imei":
            setattr(self, k, v.strip())
    try:
        v = (await self.at.cmd(cgmr, timeout_ms=self.t)).value()
        if v:
            self.revision = v.strip()
    except ATCommandError:
        pass
    self.info["model"] = self.model
    self.info["revision"] = self.revision
    return self.model, self.revision


async def sim_ready(self):
    """AT+CPIN? until READY; enters the PIN from config once if asked; 'SIM busy' while booting
    is retried (bounded by sim_timeout_ms)."""
    c = self.clock
    t0 = c.ticks_ms()
    pin_sent = False
    cmd, p, pin_state = "AT+CPIN?|+CPIN:|SIM PIN".split("|")  # the query, its reply, the state asking for the PIN
    kind = "sim"  # ModemError.kind of every error here
    while True:
        state = None
        try:
            state = ((await self.at.cmd(cmd, timeout_ms=self.t)).value(p) or "").strip()
        except CMEError as e:
            if not (e.code == 14 or "busy" in str(e.meaning).lower()):
                raise ModemError("SIM not usable: %s" % (e.meaning or e), e.code, e.meaning, kind=kind)
        if state == codes.CPIN_READY:
            self.info[kind] = state
            return
        if state == pin_state:
            pin = _cfg(self, "sim_pin")
            if not pin:
                raise ModemError("the SIM asks for a PIN and config cellular.sim_pin is empty", kind=kind)
            if pin_sent:
                raise ModemError("the SIM still asks for a PIN after entering cellular.sim_pin", kind=kind)
            try:
                await self.at.cmd('AT+CPIN="%s"' % pin, timeout_ms=self.t)
            except CMEError as e:
                raise ModemError("SIM PIN refused: %s (check cellular.sim_pin)" % e.meaning, e.code, e.meaning, kind=kind)
            pin_sent = True
        elif state:
            raise ModemError("SIM is locked (%s): needs a PUK or unlock on another phone" % state, kind=kind)
        if c.diff(c.ticks_ms(), t0) >= _cfg(self, "sim_timeout_ms"):
            raise ModemError("SIM not ready after %d ms (state %s)" % (_cfg(self, "sim_timeout_ms"), state or "busy"), kind=kind)
        await c.sleep_ms(_cfg(self, "poll_ms"))


async def registration(self):
    """(creg, cgreg, cereg) stats, None for a query the module refused."""
    st = []
    for cmd, p, _ in REG_QUERIES:
        try:
            st.append(parse_reg((await self.at.cmd(cmd, timeout_ms=self.t)).value(p)))
        except (ATCommandError, CMEError):
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

    pause = _cfg(self, "poll_ms")
    try:
        for q in REG_QUERIES:
            self.at.on_urc(q[1], on_urc)
            try:
                await self.at.cmd(q[2], timeout_ms=self.t)
                pause = _cfg(self, "reg_poll_ms")  # the module took at least one
            except (ATCommandError, CMEError):
                pass
        while True:
            ev.clear()  # a URC during the queries below makes the next wait return at once
            st = await registration(self)
            self.info["reg"] = st
            v = reg_verdict(*st)
            if v == "ok":
                return
            if v == "denied":
                raise ModemError(
                    "network registration denied (CREG %s, CGREG %s, CEREG %s): the SIM/plan is not allowed "
                    "on this network; check the SIM is activated for data" % st,
                    codes.REG_DENIED,
                    codes.reg_state(codes.REG_DENIED),
                    kind="reg_denied",
                )
            left = timeout_ms - c.diff(c.ticks_ms(), t0)
            if left <= 0:
                names = ", ".join(codes.reg_state(s) for s in st if s is not None) or "no answer to any query"
                raise ModemError(
                    "not registered after %d ms (CREG %s, CGREG %s, CEREG %s: %s); check antenna and coverage"
                    % ((timeout_ms,) + st + (names,)),
                    kind="reg_timeout",
                )
            try:
                await c.wait_for_ms(ev.wait(), min(pause, left))
            except TimeoutError:
                pass
    finally:
        # the URC handler closes over this module: 'known, ignore' (None) again when the wait ends,
        # so nothing of the bring-up stays referenced from the engine
        for q in REG_QUERIES:
            self.at.on_urc(q[1], None)


async def cpsi(self):
    """AT+CPSI? -> dict: system, mode, operator, band (where present), rsrp/rsrq/rssi for LTE."""
    try:
        value = (await self.at.cmd("AT+CPSI?", timeout_ms=self.t)).value()
    except (ATCommandError, CMEError):
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


async def set_apn(self, apn=None, user=None, password=None, index=1):
    """AT+CGDCONT for PDP context `index` (its cid), and AT+CGAUTH when there is an APN user."""
    apn = _cfg(self, "apn") if apn is None else apn
    if not apn:
        return False
    await self.at.cmd('AT+CGDCONT=%d,"IP","%s"' % (index, apn), timeout_ms=self.t)
    user = _cfg(self, "apn_user") if user is None else user
    password = _cfg(self, "apn_pass") if password is None else password
    if user:
        try:
            await self.at.cmd('AT+CGAUTH=%d,1,"%s","%s"' % (index, password or "", user), timeout_ms=self.t)
        except (ATCommandError, CMEError) as e:
            raise ModemError("AT+CGAUTH refused for APN user %r: %s" % (user, e), kind="apn")
    return True


async def bring_up(self):
    """Boot wait, ATE0, identify, CMEE=2, SIM, CTZU=1, APN, registration, signal, CPSI, time.
    Returns the info dict. Raises ModemError (.kind) with what to fix."""
    at = self.at
    echo_off, cmee, cmee1, ctzu = "ATE0 AT+CMEE=2 AT+CMEE=1 AT+CTZU=1".split()
    await wait_ready(self)
    await at.cmd(echo_off, timeout_ms=self.t)
    await identify(self)
    try:
        await at.cmd(cmee, timeout_ms=self.t)  # verbose +CME ERROR texts; numeric where refused
    except ATCommandError:
        await at.cmd(cmee1, timeout_ms=self.t)
    await sim_ready(self)
    # network time zone updates (NITZ) into the clock, so AT+CCLK? carries network time
    try:
        await at.cmd(ctzu, timeout_ms=self.t)
    except (ATCommandError, CMEError):
        pass
    await set_apn(self)
    await wait_registered(self)
    await self.signal_dbm()
    await cpsi(self)
    await self.network_time()
    if self.log:
        self.log.info("modem %s rev %s up: %s", self.model, self.revision, self.info)
    return self.info
