# GNSS sources, one module each, all with the contract of gnss.fix.GnssSource (fix/run/start/stop/
# restart/off) and one shared Fix (gnss/fix.py):
#
#   UartGnss(stream)   gnss/nmea.py    a GNSS module's NMEA on a UART (or a pty on the host)
#   ModemGnss(at)      gnss/modem.py   the SIM7600's GNSS: AT+CGPS=1,1 + periodic +CGPSINFO URCs
#   CoprocGnss(obd)    gnss/coproc.py  the ONE+ co-processor's GNSS: ATGPSON, then ATGPS ($GNIFO)
#
# `from gnss.sources import X` loads only X's module (module __getattr__, both runtimes), so
# a device pays for the source it uses; on the device this finder leaves sys.modules again once
# it has answered (it is used at boot). Every source builds its Fix with a JumpFilter unless
# given jump_filter=None.
import sys

from gnss.fix import GnssError, GnssSource  # noqa: F401 - re-exported

_WHERE = {
    "wait_fix": "gnss.wait",
    "UartGnss": "gnss.nmea",
    "ModemGnss": "gnss.modem",
    "parse_cgpsinfo": "gnss.modem",
    "CoprocGnss": "gnss.coproc",
    "parse_gnifo": "gnss.coproc",
}


def __getattr__(name):
    m = _WHERE.get(name)
    if m is None:
        raise AttributeError(name)
    v = getattr(__import__(m, None, None, (name,)), name)
    if sys.implementation.name == "micropython":
        from core.unload import forget

        forget("gnss.sources")
    return v
