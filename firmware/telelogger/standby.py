# Engine-off detection and wake rules for standby, as pure logic (no I/O): the loop feeds it
# readings and asks what to do (telelogger/CONFIG.md, standby.*). Standby comes
#  - after `stationary_s` without motion, whatever the battery says (a parked car with a healthy
#    battery at 12.6 V sleeps, like the official firmware) -- unless the last voltage is at or
#    above `voltage_wake`: the alternator is charging, the engine idles (official issue 165),
#    and standby would wake again at once;
#  - or when the voltage stayed below `voltage_off` for _LOW_CONFIRM_MS (protects the battery;
#    a short dip while cranking is not enough).
from core.compat import const

_MOTION_KMH = const(2)  # "motion" means OBD or GNSS speed >= 2 km/h (official firmware)
_LOW_CONFIRM_MS = const(10000)  # voltage below voltage_off this long: standby


class Standby:
    """cfg: the `standby` section: voltage_off, voltage_wake, stationary_s, heartbeat_s.
    All times are the loop's monotonic milliseconds; stationary for: now - last_motion_ms. Waking
    (voltage_wake reached) and what it resets: telelogger/standby_io.py, which runs standby (entered
    from the record task, Telelogger.record_task, when should_sleep says so)."""

    def __init__(self, cfg, now=0):
        cfg = cfg or {}
        self.voltage_off = cfg.get("voltage_off", 12.9)
        self.voltage_wake = cfg.get("voltage_wake", 13.4)
        self.stationary_ms = int(cfg.get("stationary_s", 600) * 1000)
        hb = cfg.get("heartbeat_s", 0) or 0
        self.heartbeat_ms = int(hb * 1000)
        self.last_motion_ms = now
        self.low_since_ms = None
        self.voltage = None
        self.speed = None

    def motion(self, speed_kmh, now):
        """Feed a speed reading (OBD or GNSS)."""
        if speed_kmh is None:
            return
        self.speed = speed_kmh
        if speed_kmh >= _MOTION_KMH:
            self.last_motion_ms = now

    def battery(self, v, now):
        """Feed a battery voltage reading (volts)."""
        if v is None:
            return
        self.voltage = v
        if self.voltage_off and v < self.voltage_off:
            if self.low_since_ms is None:
                self.low_since_ms = now
        else:
            self.low_since_ms = None

    def should_sleep(self, now):
        """True when it is time for standby (rules at the top of this file). stationary_s 0 turns
        the stationary rule off; voltage_off 0 the low-voltage one."""
        if self.low_since_ms is not None and now - self.low_since_ms >= _LOW_CONFIRM_MS:
            return True
        if not self.stationary_ms or now - self.last_motion_ms < self.stationary_ms:
            return False
        return self.voltage is None or self.voltage < self.voltage_wake
