# The modem's network time (AT+CCLK?): asked at the end of each bring-up (modem/netreg.py's attach)
# and by the loop's signal task until UTC is known, so it is not resident: modem.sim7600.Sim7600
# imports this module when network_time() is called and drops it again (Sim7600.__getattr__ ->
# step(), through core.errors.lookup).
from at.engine import CME, ERROR, ATError


def step(self, name, a):
    """Sim7600.network_time() (modem.sim7600.Sim7600.__getattr__)."""
    return network_time(self)


def parse_cclk(value):
    """'"20/08/06,11:50:12+40"' (local time, zone in quarter hours) -> (2020, 8, 6, 11, 50, 12, 40),
    or None."""
    if not value:
        return None
    v = value.strip().strip('"')
    try:
        date, rest = v.split(",")
        rest, tz = offset(rest)
        # yy/mm/dd,hh:mm:ss: six numbers (a wrong count is a ValueError too)
        t = tuple(map(int, (date + "/" + rest.replace(":", "/")).split("/"))) + (tz,)
        if len(t) != 7:
            return None
    except ValueError:
        return None
    return (2000 + t[0],) + t[1:]


def offset(rest):
    """parse_cclk's zone, signed: "11:50:12+40" -> ("11:50:12", 40); none: 0 (a function of its own:
    each one's bytecode is one allocation). Raises ValueError."""
    i = max(rest.find("+"), rest.find("-"))
    if i < 0:
        return rest, 0
    return rest[:i], int(rest[i:])


async def network_time(self):
    """AT+CCLK? -> (year, month, day, h, m, s, tz_quarter_hours) in local time, or None when the
    module has no network time yet (it reports its default year 1980/2080 until NITZ arrives;
    bring-up sends AT+CTZU=1 so that it does)."""
    try:
        r = await self.at.cmd("AT+CCLK?", timeout_ms=self.t)
    except ATError as e:
        if e.kind not in (ERROR, CME):
            raise
        return None
    t = parse_cclk(r.value())
    if t is None or t[0] < 2020 or t[0] >= 2080:
        return None
    self.info["time"] = t
    return t
