# The SIM7600's own GNSS through the AT engine: AT+CGPS=1,1, then +CGPSINFO reports every
# interval_s seconds (URCs), with an AT+CGPSINFO poll when they do not come. Switching it on and
# off (AT+CGPS..., rare) is gnss/cgps.py, imported for the call.
from core.errors import lookup
from gnss.fields import FieldReader
from gnss.fix import KNOT_KMH, GnssError, GnssSource  # noqa: F401 - GnssError re-exported


def parse_cgpsinfo(text, fix, fields=None):
    """Parse `+CGPSINFO: lat,N/S,lon,E/W,ddmmyy,hhmmss.s,alt,speed(knots),course` (str or bytes,
    prefix optional) into `fix`. All-empty fields (no fix) mark the fix invalid with unknown
    position. Returns True if accepted, False if malformed or refused by Fix.put ((0,0), jump)."""
    fr = fields or FieldReader(bytearray(128), 16)
    if not fr.copy(text, 0, b"\r\n"):
        fix.rejected += 1
        return False
    # the prefix and the blanks after it, skipped in the copy (bytes: no text made or interned)
    buf = fr.buf
    s = 10 if buf.find(b"+CGPSINFO:", 0, 10) == 0 else 0
    e = fr.end[fr.count - 1]  # the copy's length
    while s < e and buf[s] == 32:
        s += 1
    if (s and not fr.load(s, e)) or fr.count < 8:
        fix.rejected += 1
        return False
    lat = fr.latlon(0, 90)
    lon = fr.latlon(2, 180)
    has_d = fr.date(4)
    has_t = fr.time(5)
    alt = fr.num(6)
    kn = fr.num(7)
    course = fr.num(8) if fr.count > 8 else None
    if fr.errors or (lat is None) != (lon is None):
        fix.rejected += 1
        return False
    valid = lat is not None
    if not fix.put(fr, lat, lon, valid, has_t, has_d):
        return False
    fix.alt = alt
    fix.speed_kmh = None if kn is None else kn * KNOT_KMH
    fix.course = course
    fix.quality = 1 if valid else 0
    fix.accepted += 1
    return True


class ModemGnss(GnssSource):
    """The SIM7600's GNSS (contract: gnss/fix.py GnssSource). `at`: the AT engine (cmd, on_urc, stats).

    enable(): [AT+CVAUXV=3050, AT+CVAUXS=1 (active antenna supply; errors ignored)], AT+CGPS=1,1
    (if it answers ERROR, AT+CGPS? telling "+CGPS: 1" means it was already on), then
    AT+CGPSINFO=<interval_s> so the module reports `+CGPSINFO:` every interval_s seconds.
    off(): AT+CGPSINFO=0, AT+CGPS=0. query(): one AT+CGPSINFO read.
    run() enables, and enables again whenever the GNSS is off on the module: after the module
    restarted (an RDY, counted by the engine in at.stats["reboots"]: an unasked reset, a power
    cycle after AT+CPOF), after restart() (cellular re-init, standby wake), and when AT+CGPS?
    says 0 while reports are missing; a failed enable is logged and retried every retry_ms."""

    # set by gnss/cgps.py's init: declared for the type checker only (a bare annotation compiles to nothing
    # on MicroPython, and so does `if 1 - 1`: see telelogger/loop.py)
    if 1 - 1:
        from typing import Any
    at: "Any"
    interval_s: int
    antenna_power: bool
    timeout_ms: int
    retry_ms: int
    enables: int
    reports: int
    _fields: FieldReader
    _st: dict
    _boots: int

    def __init__(self, at, *a, **k):  # (at, fix=None, jump_filter=True, interval_s=1, antenna_power=True,
        # timeout_ms=3000, retry_ms=10000, clock=None, log=None): run once, so its body is gnss/cgps.py's init
        lookup("gnss.cgps", "init", self, at, a, k)  # imported for the call, dropped again

    def feed(self, line, body=None):
        """Parse one `+CGPSINFO: ...` line (or its body; also the engine's URC handler); True if
        the fix was updated."""
        self.reports += 1
        return parse_cgpsinfo(line, self._fix, self._fields)

    def restart(self):
        self.running = False

    power_on = restart  # the standby hook's name (telelogger/standby.py calls it after wake)

    def enable(self):
        return lookup("gnss.cgps", "enable", self)  # imported for the call, dropped again

    def off(self):
        return lookup("gnss.cgps", "off", self)

    def query(self):
        """One explicit read (AT+CGPSINFO; awaited): True if it updated the fix. Run when the reports stop
        (gnss/cgps.py silent), so its body is gnss/cgps.py's."""
        return lookup("gnss.cgps", "query", self)

    async def run(self):
        clock = self.clock
        st = self._st
        period = self.interval_s * 1000
        while True:
            if st.get("reboots", 0) != self._boots:
                self.running = False  # the module restarted: its GNSS is off again
            if not self.running:
                try:
                    await self.enable()
                except Exception as e:
                    self._error("enable (AT+CGPS=1,1)", e)
                    await clock.sleep_ms(self.retry_ms)
                    continue
            seen = self.reports
            await clock.sleep_ms(2 * period)
            if self.running and self.reports == seen and st.get("reboots", 0) == self._boots:
                await lookup("gnss.cgps", "silent", self)  # is it still on? read it (rare: gnss/cgps.py)
