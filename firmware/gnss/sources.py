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


def __getattr__(name):
    # name and its module, pair after pair: one string interns no name (a dict's short keys and
    # values would stay interned for the life of the interpreter, for a finder used once at boot)
    w = ("wait_fix gnss.wait  UartGnss gnss.nmea  ModemGnss gnss.modem  parse_cgpsinfo gnss.modem  "
         "CoprocGnss gnss.coproc  parse_gnifo gnss.coproc").split()
    for i in range(0, len(w), 2):
        if w[i] == name:
            v = getattr(__import__(w[i + 1], None, None, (name,)), name)
            if sys.implementation.name == "micropython":
                from core.errors import forget

                forget("gnss.sources")
            return v
    raise AttributeError(name)
