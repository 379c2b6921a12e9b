# The SIM7600 GNSS's switching, the rare path of gnss.modem.ModemGnss (at boot, after a module
# restart, standby): imported for the call and dropped again on the device.
from core.compat import const
from gnss.fix import GnssError

# SIM7600 AT manual: AT+CVAUXV takes millivolts (1700..3050; the "61" form is the SIM5360's)
_ANTENNA_MV = const(3050)


async def enable(src):
    """[AT+CVAUXV=3050, AT+CVAUXS=1 (active antenna supply; errors ignored)], AT+CGPS=1,1 (if it
    answers ERROR, AT+CGPS? telling "+CGPS: 1" means it was already on), AT+CGPSINFO=<interval_s>."""
    at = src.at
    t = src.timeout_ms
    src._boots = src._st.get("reboots", 0)
    if src.antenna_power:
        for c in ("AT+CVAUXV=%d" % _ANTENNA_MV, "AT+CVAUXS=1"):
            try:
                await at.cmd(c, timeout_ms=t)
            except Exception:
                pass  # not every SIM7600 firmware has these; the GNSS still works on passive antennas
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
