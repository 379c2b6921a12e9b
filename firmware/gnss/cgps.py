# The SIM7600 GNSS's set-up and switching, the rare path of gnss.modem.ModemGnss (its construction, and
# switching at boot, after a module restart, standby; its explicit read when the reports stop): imported
# for the call and dropped again on the device.
# (its 12 module globals fit a dict table of 12 slots, one block: what one function alone uses is imported there)
from core.compat import const
from gnss.fix import GnssError, GnssSource

# SIM7600 AT manual: AT+CVAUXV takes millivolts (1700..3050; the "61" form is the SIM5360's)
_ANTENNA_MV = const(3050)


def init(src, at, a, k):
    """ModemGnss.__init__(at, *a, **k) (its arguments and defaults: _init)."""
    _init(src, at, *a, **k)


def _init(self, at, fix=None, jump_filter=True, interval_s=1, antenna_power=True, timeout_ms=3000, retry_ms=10000,
         clock=None, log=None):
    """ModemGnss.__init__ (its arguments and defaults: gnss/modem.py)."""
    from gnss.fields import FieldReader

    GnssSource.__init__(self, fix, jump_filter, clock, log)
    self.at = at
    self.interval_s = interval_s
    self.stale_ms = max(self.stale_ms, 3000 * interval_s)  # three missed reports at least
    self.antenna_power = antenna_power
    self.timeout_ms = timeout_ms
    self.retry_ms = retry_ms
    self.running = False  # GNSS enabled in the module's current session
    self.enables = 0  # successful enable() calls
    self.reports = 0  # +CGPSINFO lines seen (URC or query)
    self._fields = FieldReader(bytearray(128), 16)
    st = getattr(at, "stats", None)
    self._st = st if st is not None else {}  # the engine's counters: "reboots" (RDY seen)
    self._boots = self._st.get("reboots", 0)  # at the last enable
    at.on_urc("+CGPSINFO:", self.feed)


async def enable(src):
    """[AT+CVAUXV=3050, AT+CVAUXS=1 (active antenna supply; errors ignored)], AT+CGPS=1,1 (if it
    answers ERROR, AT+CGPS? telling "+CGPS: 1" means it was already on), AT+CGPSINFO=<interval_s>."""
    at = src.at
    t = src.timeout_ms
    src._boots = src._st.get("reboots", 0)
    if src.antenna_power:
        await antenna_power(src)
    try:
        await at.cmd("AT+CGPS=1,1", timeout_ms=t)
    except Exception as e:
        # ERROR is also the answer when the GNSS is already running
        v = (await at.cmd("AT+CGPS?", timeout_ms=t)).value("+CGPS:")
        if not v or not v.startswith("1"):
            raise GnssError("AT+CGPS=1,1 failed (%s) and AT+CGPS? says %r: GNSS not started" % (e, v))
    await at.cmd("AT+CGPSINFO=%d" % src.interval_s, timeout_ms=t)
    src.running = True
    src.enables += 1


async def antenna_power(src):
    """enable's active antenna supply (a function of its own: each one's bytecode is one allocation)."""
    for c in ("AT+CVAUXV=%d" % _ANTENNA_MV, "AT+CVAUXS=1"):
        try:
            await src.at.cmd(c, timeout_ms=src.timeout_ms)
        except Exception:
            pass  # not every SIM7600 firmware has these; the GNSS still works on passive antennas


async def off(src):
    """AT+CGPSINFO=0 (errors ignored), AT+CGPS=0."""
    at = src.at
    t = src.timeout_ms
    src.running = False
    try:
        await at.cmd("AT+CGPSINFO=0", timeout_ms=t)
    except Exception:
        pass
    try:
        await at.cmd("AT+CGPS=0", timeout_ms=t)
    except Exception as e:
        raise GnssError("AT+CGPS=0 failed: %s" % e)


async def silent(src):
    """ModemGnss.run() saw no report for two intervals: is the GNSS still on (AT+CGPS?: "1,1" on, "0"
    off)? Off: running False (run() enables it again); else read it (AT+CGPSINFO; a module without
    AT+CGPS? is read all the same), a failure logged."""
    try:
        v = (await src.at.cmd("AT+CGPS?", timeout_ms=src.timeout_ms)).value("+CGPS:")
    except Exception:
        v = None
    if v is not None and v.startswith("0"):
        src.running = False
        return
    try:
        await query(src)
    except Exception as e:
        src._error("AT+CGPSINFO", e)


async def query(src):
    """ModemGnss.query(): one AT+CGPSINFO read; True if it updated the fix."""
    v = (await src.at.cmd("AT+CGPSINFO", timeout_ms=src.timeout_ms)).value("+CGPSINFO:")
    return False if v is None else src.feed(v)
