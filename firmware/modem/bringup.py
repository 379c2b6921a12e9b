# SIM7600 bring-up (sim7600-mqtt-at.md §2), its first half: boot wait, identify, SIM, APN
# (Sim7600.bring_up: boot here, then modem/netreg.py's attach: registration, signal, CPSI, time).
# Boot/recovery only: modem.sim7600.Sim7600 imports this module when a step runs and drops it
# from sys.modules again (Sim7600.__getattr__ -> step(), through core.errors.lookup), so none of
# it stays resident, and the two halves of a bring-up are never in the heap together. Every
# function takes the Sim7600 (`self`) (its at, clock, cfg, info; a setting is the config's, else
# DEFAULTS' below: _cfg) first; errors are modem.errors.ModemError
# with .kind saying which step failed.
#
# Every wait is bounded, and every wait is for a reply: polling loops send a command, read its
# reply and pause poll_ms between attempts; the total is capped by a *_timeout_ms. Boot URCs (RDY,
# +CPIN: READY, SMS DONE, PB DONE) are URCs to the engine: never answers here.
#
# Names (MicroPython interns every identifier and every string literal of <= 10 characters, for
# good): short commands and reply prefixes are written as one longer literal split where they are
# used ('cmd, p = "AT+CPIN? +CPIN:".split()'), a plain string freed with this module; the helpers
# are few. The failures' messages are modem/code_table.py's M lines (codes.TEXTS msg, read when one happens).
from at.engine import CME, ERROR, ATError
from core.errors import lookup
from modem import codes
from modem.errors import ModemError

# The settings of this half a config may give (Sim7600(config=...)): the config's value, else this.
DEFAULTS = {
    "apn": "",  # empty: leave the module's automatic APN alone
    "apn_user": "",
    "apn_pass": "",
    "sim_pin": "",
    "boot_timeout_ms": 30000,  # AT answered with OK
    "sim_timeout_ms": 20000,  # SIM busy -> READY
    "poll_ms": 1000,  # pause between polls
}


def step(self, name, a):
    """Sim7600.<name>(*a) for the steps that live here (modem.sim7600.Sim7600.__getattr__)."""
    return globals()[name](self, *a)


def _cfg(self, key):
    # a bring-up setting: the config's, else DEFAULTS'
    return self.cfg.get(key, DEFAULTS[key])


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
            raise ModemError(lookup(codes.TEXTS, "msg", 0, (timeout_ms, last)), kind="not_responding")
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
    except ATError as e:
        if e.kind != ERROR:
            raise
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
        state = await query(self, cmd, p)
        if state == codes.CPIN_READY:
            self.info[kind] = state
            return
        if state == pin_state:
            await _enter_pin(self, pin_sent)
            pin_sent = True
        elif state:
            raise ModemError(lookup(codes.TEXTS, "msg", 1, (state,)), kind=kind)
        if c.diff(c.ticks_ms(), t0) >= _cfg(self, "sim_timeout_ms"):
            raise ModemError(lookup(codes.TEXTS, "msg", 2, (_cfg(self, "sim_timeout_ms"), state or "busy")), kind=kind)
        await c.sleep_ms(_cfg(self, "poll_ms"))


async def query(self, cmd, p):
    """sim_ready's AT+CPIN? (its own function: each stays a small block; its name is one the
    firmware interns already): the state, None while the SIM is busy."""
    try:
        return ((await self.at.cmd(cmd, timeout_ms=self.t)).value(p) or "").strip()
    except ATError as e:
        if e.kind != CME:
            raise
        if not (e.code == 14 or "busy" in str(e.meaning).lower()):
            raise ModemError(lookup(codes.TEXTS, "msg", 3, (e.meaning or e,)), e.code, e.meaning, kind="sim")
    return None


async def _enter_pin(self, pin_sent):
    """sim_ready's answer to 'SIM PIN': the PIN from config, once (its own function: each stays a
    small block)."""
    pin = _cfg(self, "sim_pin")
    if not pin:
        raise ModemError(lookup(codes.TEXTS, "msg", 4), kind="sim")
    if pin_sent:
        raise ModemError(lookup(codes.TEXTS, "msg", 5), kind="sim")
    try:
        await self.at.cmd('AT+CPIN="%s"' % pin, timeout_ms=self.t)
    except ATError as e:
        if e.kind != CME:
            raise
        raise ModemError(lookup(codes.TEXTS, "msg", 6, (e.meaning,)), e.code, e.meaning, kind="sim")


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
        except ATError as e:
            if e.kind not in (ERROR, CME):
                raise
            raise ModemError(lookup(codes.TEXTS, "msg", 7, (user, e)), kind="apn")
    return True


async def boot(self):
    """The first half of Sim7600.bring_up: boot wait, ATE0, identify, CMEE=2, SIM, CTZU=1, APN.
    Raises ModemError (.kind) with what to fix."""
    at = self.at
    echo_off, cmee, cmee1, ctzu = "ATE0 AT+CMEE=2 AT+CMEE=1 AT+CTZU=1".split()
    await wait_ready(self)
    await at.cmd(echo_off, timeout_ms=self.t)
    await identify(self)
    try:
        await at.cmd(cmee, timeout_ms=self.t)  # verbose +CME ERROR texts; numeric where refused
    except ATError as e:
        if e.kind != ERROR:
            raise
        await at.cmd(cmee1, timeout_ms=self.t)
    await sim_ready(self)
    # network time zone updates (NITZ) into the clock, so AT+CCLK? carries network time
    try:
        await at.cmd(ctzu, timeout_ms=self.t)
    except ATError as e:
        if e.kind not in (ERROR, CME):
            raise
    await set_apn(self)
