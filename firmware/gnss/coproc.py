# The ONE+ co-processor's GNSS: started with ATGPSON, read with ATGPS ("$GNIFO,..."), stopped
# with ATGPSOFF (official FreematicsESP32 gpsBegin/gpsGetData/gpsEnd). The OBD link owner
# (obdii.obd.Obd) sends the commands: Obd.coproc_gnss() starts the GNSS before its first query.
from core.compat import sleep_ms
from gnss.fields import FieldReader
from gnss.fix import KNOT_KMH, GnssSource


def _sint(fr, i):
    """Signed integer field i (optional leading '-') of the FieldReader."""
    if i >= fr.count:
        return None
    s = fr.start[i]
    if s < fr.end[i] and fr.buf[s] == 45:
        fr.start[i] = s + 1
        v = fr.uint(i)
        fr.start[i] = s
        if v is None:
            fr.errors = 1
            return None
        return -v
    return fr.uint(i)


def parse_gnifo(text, fix, fields=None, speed_knots=True, hdop_scale=1.0):
    """Parse the co-processor's `$GNIFO,date,time,lat*1e6,lng*1e6,alt*100,speed*100,
    heading*100,sats,hdop` (found anywhere in `text`) into `fix`.

    date is ddmmyy and time hhmmsscc as integers (TinyGPS style, leading zeros may be absent);
    date 0 means no fix. Speed is knots*100 like TinyGPS (speed_knots=False: km/h*100); hdop is
    taken as sent times hdop_scale. A reply repeating the date and time of the last accepted
    one is the same fix again: not taken (it does not keep the position current). Returns True
    if accepted."""
    if not isinstance(text, str):
        text = bytes(text).decode()
    i = text.find("$GNIFO,")
    if i < 0:
        return False
    fr = fields or FieldReader(bytearray(128), 16)
    if not fr.copy(text, i + 7, b"\r\n>") or fr.count < 5:
        fix.rejected += 1
        return False
    date = fr.uint(0)
    tm = fr.uint(1)
    lat = _sint(fr, 2)
    lng = _sint(fr, 3)
    alt = _sint(fr, 4)
    spd = fr.uint(5)
    hdg = fr.uint(6)
    sats = fr.uint(7)
    hdop = fr.num(8)
    if fr.errors or not date or lat is None or lng is None:
        if fr.errors:
            fix.rejected += 1
            return False
        fix.valid = False  # date 0: the co-processor has no fix yet
        fix.ignored += 1
        return False
    if not fr.date(0, date) or tm is None:
        fix.rejected += 1
        return False
    h = tm // 1000000
    mi = (tm // 10000) % 100
    s = (tm // 100) % 100
    if h > 23 or mi > 59 or s > 60 or abs(lat) > 90000000 or abs(lng) > 180000000:
        fix.rejected += 1
        return False
    ms = (tm % 100) * 10
    if (fix.valid and s == fix.second and mi == fix.minute and h == fix.hour and ms == fix.ms
            and fr.day == fix.day and fr.month == fix.month and fr.year == fix.year):
        fix.ignored += 1  # the same fix again
        return False
    fr.hour = h
    fr.minute = mi
    fr.second = s
    fr.ms = ms
    if not fix.put(fr, lat / 1000000, lng / 1000000, True, True, True):
        return False
    fix.alt = None if alt is None else alt / 100
    if spd is None:
        fix.speed_kmh = None
    else:
        fix.speed_kmh = spd / 100 * (KNOT_KMH if speed_knots else 1.0)
    fix.course = None if hdg is None else hdg / 100
    fix.sats = sats
    fix.hdop = None if hdop is None else hdop * hdop_scale
    fix.quality = 1
    fix.accepted += 1
    return True


class CoprocGnss(GnssSource):
    """The co-processor's GNSS (contract: gnss/fix.py GnssSource). `query`: an obdii.obd.Obd (its
    coproc_gnss() starts the GNSS with ATGPSON first, gnss_off() stops it) or any async callable
    returning the ATGPS reply text. poll() reads once; run() polls every period_ms."""

    def __init__(self, query, fix=None, jump_filter=True, period_ms=1000, speed_knots=True, hdop_scale=1.0,
                 clock=None, log=None):
        GnssSource.__init__(self, fix, jump_filter, clock, log)
        self.obd = None
        if hasattr(query, "coproc_gnss"):
            self.obd = query
            query = query.coproc_gnss
        self.query = query
        self.period_ms = period_ms
        self.stale_ms = max(self.stale_ms, 3 * period_ms)  # three missed polls at least
        self.speed_knots = speed_knots
        self.hdop_scale = hdop_scale
        self._fields = FieldReader(bytearray(128), 16)

    async def poll(self):
        reply = await self.query()
        if not reply:
            return False
        return parse_gnifo(reply, self._fix, self._fields, self.speed_knots, self.hdop_scale)

    def restart(self):
        if self.obd is not None:
            self.obd.gnss_started = False

    async def off(self):
        if self.obd is not None:
            await self.obd.gnss_off()

    async def run(self):
        while True:
            try:
                await self.poll()
            except Exception as e:  # a link timeout: count it, try again next period
                self._error("ATGPS", e)
            await sleep_ms(self.period_ms)
