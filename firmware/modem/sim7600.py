# SIM7600 bring-up and network state over an ATEngine (sim7600-mqtt-at.md §2, §4).
#
#   modem = Sim7600(at, clock, config)       # config: dict (cellular section + secrets), see DEFAULTS
#   info = await modem.bring_up()            # boot, ATE0, identify, CMEE, SIM, APN, registration, signal
#   modem.model, modem.revision, modem.ssl_supported()
#   await modem.signal_dbm()                 # CSQ -> dBm or None (99 = unknown)
#   await modem.network_time()               # CCLK -> (y, mo, d, h, mi, s, tz_quarters) or None
#
# Every wait is bounded, and every wait is for a reply: polling loops send a command, read its
# reply and pause poll_ms between attempts; the total is capped by a *_timeout_ms. Registration
# waits on the module's own +CREG/+CGREG/+CEREG URCs (enabled with =1), re-querying every
# reg_poll_ms in case a URC line was lost.
# Boot URCs (RDY, +CPIN: READY, SMS DONE, PB DONE) are URCs to the engine: never answers here.
import asyncio

from at.engine import ATCommandError, ATError, ATTimeout, CMEError
from core.compat import DEFAULT_CLOCK, TimeoutError  # noqa: A004 - asyncio's, on both runtimes
from modem import codes
from net.publisher import NetError


class ModemError(NetError):
    pass


class ModemNotResponding(ModemError):
    pass


class SimError(ModemError):
    pass


class RegistrationDenied(ModemError):
    pass


class RegistrationTimeout(ModemError):
    pass


DEFAULTS = {
    "apn": "",  # empty: leave the module's automatic APN alone
    "apn_user": "",
    "apn_pass": "",
    "sim_pin": "",
    "boot_timeout_ms": 30000,  # AT answered with OK
    "sim_timeout_ms": 20000,  # SIM busy -> READY
    "reg_timeout_ms": 180000,  # registration
    "poll_ms": 1000,  # pause between polls
    "reg_poll_ms": 10000,  # registration: re-query this often while waiting for the URCs
    "cmd_timeout_ms": 5000,
}


def csq_to_dbm(rssi):
    """+CSQ rssi 0..31 -> dBm (-113 + 2*rssi); 99 (and anything outside 0..31) -> None."""
    if rssi is None or rssi < 0 or rssi > 31:
        return None
    return -113 + 2 * rssi


def parse_reg(value):
    """'+CREG: 0,1' value part ('0,1' or '2,1,"1A2B",...' or an unsolicited '1') -> stat int."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        if len(parts) == 1:
            return int(parts[0])
        return int(parts[1])
    except ValueError:
        return None


def parse_cclk(value):
    """'"20/08/06,11:50:12+40"' -> (2020, 8, 6, 11, 50, 12, 40) (tz in quarter hours), or None."""
    if not value:
        return None
    v = value.strip().strip('"')
    try:
        date, rest = v.split(",")
        yy, mo, dd = [int(x) for x in date.split("/")]
        tz = 0
        for ch in "+-":
            if ch in rest:
                rest, z = rest.split(ch)
                tz = int(z) if ch == "+" else -int(z)
                break
        hh, mi, ss = [int(x) for x in rest.split(":")]
    except ValueError:
        return None
    return (2000 + yy, mo, dd, hh, mi, ss, tz)


def parse_cpsi(value):
    """'+CPSI:' value -> dict: system, mode, operator, band (where present), rsrp/rsrq for LTE."""
    if not value:
        return None
    f = [x.strip() for x in value.split(",")]
    d = {"system": f[0], "mode": f[1] if len(f) > 1 else ""}
    if len(f) > 2:
        d["operator"] = f[2]
    if f[0] == "LTE" and len(f) >= 13:
        d["band"] = f[6]
        try:
            d["rsrq"] = int(f[10]) / 10
            d["rsrp"] = int(f[11]) / 10
            d["rssi"] = int(f[12]) / 10
        except ValueError:
            pass
    return d


# circuit-switched, GPRS and EPS registration: the query and its reply/URC prefix
REG_QUERIES = (("AT+CREG?", "+CREG:"), ("AT+CGREG?", "+CGREG:"), ("AT+CEREG?", "+CEREG:"))


class Sim7600:
    def __init__(self, at, clock=None, config=None, log=None):
        self.at = at
        self.clock = clock or DEFAULT_CLOCK
        cfg = dict(DEFAULTS)
        if config:
            for k in config:
                if config[k] is not None:
                    cfg[k] = config[k]
        self.cfg = cfg
        self.log = log
        self.model = None
        self.revision = None
        self.imei = None
        self.info = {}
        self._reg_ev = None

    def _t(self):
        return self.cfg["cmd_timeout_ms"]

    async def _poll_pause(self):
        await self.clock.sleep_ms(self.cfg["poll_ms"])

    # ------------------------------------------------------------------ boot
    async def wait_ready(self, timeout_ms=None):
        """Send AT until the module answers OK (boot URCs are dropped by the engine)."""
        timeout_ms = timeout_ms or self.cfg["boot_timeout_ms"]
        t0 = self.clock.ticks_ms()
        last = None
        while True:
            try:
                await self.at.cmd("AT", timeout_ms=min(1000, timeout_ms))
                return
            except ATError as e:  # timeout, garbage, ERROR while booting, reboot
                last = e
            if self.clock.diff(self.clock.ticks_ms(), t0) >= timeout_ms:
                raise ModemNotResponding("modem did not answer AT within %d ms (last: %s)" % (timeout_ms, last))
            await self._poll_pause()

    async def identify(self):
        """ATI + AT+CGMR: model and firmware revision (and IMEI)."""
        r = await self.at.cmd("ATI", timeout_ms=self._t())
        for ln in r.lines:
            if ln.startswith("Model:"):
                self.model = ln[6:].strip()
            elif ln.startswith("Revision:"):
                self.revision = ln[9:].strip()
            elif ln.startswith("IMEI:"):
                self.imei = ln[5:].strip()
        try:
            r = await self.at.cmd("AT+CGMR", timeout_ms=self._t())
            v = r.value("+CGMR:")
            if v:
                self.revision = v.strip()
        except ATCommandError:
            pass
        self.info["model"] = self.model
        self.info["revision"] = self.revision
        return self.model, self.revision

    def ssl_supported(self):
        """False for firmware known to refuse AT+CSSLCFG (codes.FIRMWARE_NO_SSL)."""
        rev = self.revision or ""
        for bad in codes.FIRMWARE_NO_SSL:
            if bad in rev:
                return False
        return True

    # ------------------------------------------------------------------ SIM
    async def sim_ready(self):
        """AT+CPIN? until READY; enters the PIN from config once if asked; 'SIM busy' while
        booting is retried (bounded by sim_timeout_ms)."""
        t0 = self.clock.ticks_ms()
        pin_sent = False
        while True:
            state = None
            try:
                r = await self.at.cmd("AT+CPIN?", timeout_ms=self._t())
                state = (r.value("+CPIN:") or "").strip()
            except CMEError as e:
                busy = e.code == 14 or "busy" in str(e.meaning).lower()
                if not busy:
                    raise SimError("SIM not usable: %s" % (e.meaning or e), e.code, e.meaning)
            if state == codes.CPIN_READY:
                self.info["sim"] = state
                return
            if state == "SIM PIN":
                pin = self.cfg.get("sim_pin")
                if not pin:
                    raise SimError("the SIM asks for a PIN and config cellular.sim_pin is empty")
                if pin_sent:
                    raise SimError("the SIM still asks for a PIN after entering cellular.sim_pin")
                try:
                    await self.at.cmd('AT+CPIN="%s"' % pin, timeout_ms=self._t())
                except CMEError as e:
                    raise SimError("SIM PIN refused: %s (check cellular.sim_pin)" % e.meaning, e.code, e.meaning)
                pin_sent = True
            elif state:
                raise SimError("SIM is locked (%s): needs a PUK or unlock on another phone" % state)
            if self.clock.diff(self.clock.ticks_ms(), t0) >= self.cfg["sim_timeout_ms"]:
                raise SimError("SIM not ready after %d ms (state %s)" % (self.cfg["sim_timeout_ms"], state or "busy"))
            await self._poll_pause()

    # ------------------------------------------------------------------ network
    async def signal_dbm(self):
        r = await self.at.cmd("AT+CSQ", timeout_ms=self._t())
        v = r.value("+CSQ:")
        try:
            rssi = int(v.split(",")[0])
        except (AttributeError, ValueError):
            return None
        dbm = csq_to_dbm(rssi)
        self.info["signal_dbm"] = dbm
        return dbm

    async def _reg(self, cmd, prefix):
        try:
            r = await self.at.cmd(cmd, timeout_ms=self._t())
        except (ATCommandError, CMEError):
            return None
        return parse_reg(r.value(prefix))

    async def registration(self):
        """(creg, cgreg, cereg) stats, None for a query the module refused."""
        return (
            await self._reg(*REG_QUERIES[0]),
            await self._reg(*REG_QUERIES[1]),
            await self._reg(*REG_QUERIES[2]),
        )

    def _on_reg_urc(self, line, _body):
        """'+CGREG: 1' (n=1): registration changed; wake wait_registered, which re-reads all three."""
        i = line.find(":")
        self.info["reg_urc"] = (line[1:i], parse_reg(line[i + 1 :].strip()))
        if self._reg_ev is not None:
            self._reg_ev.set()

    async def _reg_urcs_on(self):
        """Ask for +CREG/+CGREG/+CEREG: <stat> URCs; True if the module took at least one."""
        on = False
        for c in REG_QUERIES:
            self.at.on_urc(c[1], self._on_reg_urc)
            try:
                await self.at.cmd(c[0][:-1] + "=1", timeout_ms=self._t())
                on = True
            except (ATCommandError, CMEError):
                pass
        return on

    async def wait_registered(self, timeout_ms=None):
        """Until packet service (CGREG or CEREG, or CREG if neither answers) is 1 (home) or 5
        (roaming); 3 = denied raises at once. Waits on the registration URCs, re-querying every
        reg_poll_ms (poll_ms if the module refuses the URCs)."""
        timeout_ms = timeout_ms or self.cfg["reg_timeout_ms"]
        t0 = self.clock.ticks_ms()
        pause = self.cfg["reg_poll_ms"] if await self._reg_urcs_on() else self.cfg["poll_ms"]
        ev = self._reg_ev = asyncio.Event()
        try:
            while True:
                ev.clear()  # a URC during the queries below makes the next wait return at once
                creg, cgreg, cereg = await self.registration()
                self.info["reg"] = (creg, cgreg, cereg)
                ps = [s for s in (cgreg, cereg) if s is not None]
                if not ps and creg is not None:
                    ps = [creg]
                if any(s in codes.REG_OK for s in ps):
                    return
                if any(s == codes.REG_DENIED for s in (creg, cgreg, cereg)):
                    raise RegistrationDenied(
                        "network registration denied (CREG %s, CGREG %s, CEREG %s): the SIM/plan is not allowed "
                        "on this network; check the SIM is activated for data" % (creg, cgreg, cereg),
                        codes.REG_DENIED,
                        codes.reg_state(codes.REG_DENIED),
                    )
                left = timeout_ms - self.clock.diff(self.clock.ticks_ms(), t0)
                if left <= 0:
                    st = [s for s in (creg, cgreg, cereg) if s is not None]
                    raise RegistrationTimeout(
                        "not registered after %d ms (CREG %s, CGREG %s, CEREG %s: %s); check antenna and coverage"
                        % (timeout_ms, creg, cgreg, cereg, ", ".join(_reg_name(s) for s in st) or "no answer")
                    )
                try:
                    await self.clock.wait_for_ms(ev.wait(), min(pause, left))
                except TimeoutError:
                    pass
        finally:
            self._reg_ev = None

    async def cpsi(self):
        try:
            r = await self.at.cmd("AT+CPSI?", timeout_ms=self._t())
        except (ATCommandError, CMEError):
            return None
        d = parse_cpsi(r.value("+CPSI:"))
        self.info["cpsi"] = d
        return d

    async def set_apn(self, apn=None, user=None, password=None, cid=1):
        apn = self.cfg["apn"] if apn is None else apn
        if not apn:
            return False
        await self.at.cmd('AT+CGDCONT=%d,"IP","%s"' % (cid, apn), timeout_ms=self._t())
        user = self.cfg["apn_user"] if user is None else user
        password = self.cfg["apn_pass"] if password is None else password
        if user:
            try:
                await self.at.cmd('AT+CGAUTH=%d,1,"%s","%s"' % (cid, password or "", user), timeout_ms=self._t())
            except (ATCommandError, CMEError) as e:
                raise ModemError("AT+CGAUTH refused for APN user %r: %s" % (user, e))
        return True

    async def network_time(self):
        """AT+CCLK? -> (year, month, day, h, m, s, tz_quarter_hours), or None when the module has
        no network time yet (it reports its default year 1980/2080 until NITZ arrives)."""
        try:
            r = await self.at.cmd("AT+CCLK?", timeout_ms=self._t())
        except (ATCommandError, CMEError):
            return None
        t = parse_cclk(r.value("+CCLK:"))
        if t is None or t[0] < 2020 or t[0] >= 2080:
            return None
        self.info["time"] = t
        return t

    # ------------------------------------------------------------------ everything
    async def bring_up(self):
        """Boot wait, ATE0, identify, CMEE=2, SIM, APN, registration, signal, CPSI, time.
        Returns the info dict. Raises ModemError subclasses with what to fix."""
        await self.wait_ready()
        await self.at.cmd("ATE0", timeout_ms=self._t())
        await self.identify()
        try:
            await self.at.cmd("AT+CMEE=2", timeout_ms=self._t())
        except ATCommandError:
            await self.at.cmd("AT+CMEE=1", timeout_ms=self._t())
        await self.sim_ready()
        await self.set_apn()
        await self.wait_registered()
        await self.signal_dbm()
        await self.cpsi()
        await self.network_time()
        if self.log:
            self.log.info("modem %s rev %s up: %s", self.model, self.revision, self.info)
        return self.info


def _reg_name(s):
    return codes.reg_state(s)


__all__ = ["Sim7600", "ModemError", "SimError", "RegistrationDenied", "RegistrationTimeout", "ATTimeout"]
