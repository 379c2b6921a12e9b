# hwcheck area: the vehicle battery, from the board's ADC or the co-processor (ATRV).
from core.compat import wait_for_ms

from hwcheck.common import FAIL, PASS, SKIP, WARN, why

BATTERY_OK = (11.5, 15.5)  # volts: below = weak/discharged, above = charging system fault


class BatteryCheck:
    def __init__(self, c):
        self.c = c

    async def run(self):
        c = self.c
        name = c.step = "battery"
        v = None
        src = ""
        try:
            v = c.board.battery_voltage()
            src = "ADC"
        except Exception as e:
            c.add(WARN, name, "battery ADC read failed (%s)" % why(e), "check battery.pin in the board file")
        if v is None and c.coproc:
            obd = c.obd(name)
            if obd is None:
                return
            try:
                v = await wait_for_ms(obd.battery_voltage(), c.timeout_ms)
                src = "ATRV"
            except Exception as e:
                c.add(FAIL, name, "ATRV failed (%s)" % why(e), "check the co-processor firmware answers ATRV")
                return
        if v is None:
            c.add(SKIP, name, "not checked (no battery ADC and no co-processor)")
            return
        lo, hi = BATTERY_OK
        if v < lo:
            c.add(FAIL, name, "%.1f V (%s)" % (v, src), "below %.1f V: charge the battery or start the engine "
                  "(on USB alone the OBD side is unpowered)" % lo)
        elif v > hi:
            c.add(WARN, name, "%.1f V (%s)" % (v, src), "above %.1f V: check the vehicle's charging system" % hi)
        else:
            c.add(PASS, name, "%.1f V (%s)" % (v, src))
