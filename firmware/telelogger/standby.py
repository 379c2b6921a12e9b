# Engine-off detection and wake rules for standby, as pure logic (no I/O): the loop feeds it
# readings and asks what to do (telelogger/CONFIG.md, standby.*). Standby comes
#  - after `stationary_s` without motion, whatever the battery says (a parked car with a healthy
#    battery at 12.6 V sleeps, like the official firmware) -- unless the last voltage is at or
#    above `voltage_wake`: the alternator is charging, the engine idles (official issue 165),
#    and standby would wake again at once;
#  - or when the voltage stayed below `voltage_off` for LOW_CONFIRM_MS (protects the battery;
#    a short dip while cranking is not enough).
from telelogger.tasks import FLUSH, RUN, STANDBY, isawait

MOTION_KMH = 2  # "motion" means OBD or GNSS speed >= 2 km/h (official firmware)
LOW_CONFIRM_MS = 10000  # voltage below voltage_off this long: standby


class Standby:
    """cfg: the `standby` section: voltage_off, voltage_wake, stationary_s, heartbeat_s.
    All times are the loop's monotonic milliseconds."""

    def __init__(self, cfg, now_ms=0):
        cfg = cfg or {}
        self.voltage_off = cfg.get("voltage_off", 12.9)
        self.voltage_wake = cfg.get("voltage_wake", 13.4)
        self.stationary_ms = int(cfg.get("stationary_s", 600) * 1000)
        hb = cfg.get("heartbeat_s", 0) or 0
        self.heartbeat_ms = int(hb * 1000)
        self.last_motion_ms = now_ms
        self.low_since_ms = None
        self.voltage = None
        self.speed = None

    def motion(self, speed_kmh, now_ms):
        """Feed a speed reading (OBD or GNSS)."""
        if speed_kmh is None:
            return
        self.speed = speed_kmh
        if speed_kmh >= MOTION_KMH:
            self.last_motion_ms = now_ms

    def battery(self, volts, now_ms):
        """Feed a battery voltage reading."""
        if volts is None:
            return
        self.voltage = volts
        if self.voltage_off and volts < self.voltage_off:
            if self.low_since_ms is None:
                self.low_since_ms = now_ms
        else:
            self.low_since_ms = None

    def stationary_for(self, now_ms):
        return now_ms - self.last_motion_ms

    def should_sleep(self, now_ms):
        """True when it is time for standby (rules at the top of this file). stationary_s 0 turns
        the stationary rule off; voltage_off 0 the low-voltage one."""
        if self.low_since_ms is not None and now_ms - self.low_since_ms >= LOW_CONFIRM_MS:
            return True
        if not self.stationary_ms or self.stationary_for(now_ms) < self.stationary_ms:
            return False
        return self.voltage is None or self.voltage < self.voltage_wake

    def should_wake(self, volts):
        return volts is not None and volts >= self.voltage_wake

    def reset(self, now_ms):
        """After waking: motion timer restarts so we do not fall asleep again at once."""
        self.last_motion_ms = now_ms
        self.low_since_ms = None


# ---- the loop's side: tasks that act on the rules above ----
STANDBY_POLL_MS = 5000  # official: poll ATRV every 5 s while asleep


async def standby_task(t):
    if t.state != RUN:  # restarted after a memory fault inside enter(): wake fully, then judge again
        await _power(t, True)
        t.net_allowed = True
        t.state = RUN
    while True:
        await t.sleep(1000)
        t.beat("standby")
        if t.state == RUN and t.standby.should_sleep(t.now()):
            await enter(t)


async def _power(t, on):
    if t.board is not None and hasattr(t.board, "gnss_power"):
        try:
            t.board.gnss_power(on)
        except Exception as e:  # a board without a GNSS power pin
            t.note("debug", "gnss power: %s", e)
    name = "power_on" if on else "power_off"
    for obj in (t.modem, t.gnss):
        if obj is not None and hasattr(obj, name):
            try:
                r = getattr(obj, name)()
                if isawait(r):
                    await r
            except MemoryError:
                raise
            except Exception as e:
                t.note("warn", "%s: %s", name, e)


async def _sleep_hook(t, ms):
    b = t.board
    if b is not None and hasattr(b, "light_sleep"):
        r = b.light_sleep(ms)  # ESP32: machine.lightsleep; HostBoard: a recorded sleep
        if isawait(r):
            await r
    else:
        await t.sleep(ms)


async def _disconnect(t):
    async with t.lock:
        try:
            await t.pub.disconnect()
        except Exception as e:
            t.note("warn", "disconnect: %s", e)


async def enter(t):
    """Engine off: flush what we can, modem off properly, sleep until the voltage rises."""
    from telelogger.sampler import read_voltage
    from telelogger.status import publish_status

    sb = t.standby
    t.note("info", "standby: %s V, stationary %d s", sb.voltage, sb.stationary_for(t.now()) // 1000)
    t.counters["standby"] += 1
    t.state = FLUSH
    try:
        t.build_record()
    except MemoryError:
        raise
    except Exception as e:  # flash full: the record stays in RAM (loop.build_record), standby goes on
        t.note("error", "store append failed: %s", e)
    await t.drain(t.flush_ms)
    try:
        if t.pub.connected():
            await publish_status(t, {"standby": True})
    except MemoryError:
        raise
    except Exception as e:
        t.note("warn", "standby status: %s", e)
    t.net_allowed = False
    await _disconnect(t)
    await _power(t, False)
    t.state = STANDBY
    last_hb = t.now()
    v = None
    while True:
        if t.wdt is not None:
            t.wdt.feed()
        await _sleep_hook(t, STANDBY_POLL_MS)
        v = await read_voltage(t)
        if v is not None:
            sb.battery(v, t.now())
        if sb.should_wake(v):
            break
        if sb.heartbeat_ms and t.now() - last_hb >= sb.heartbeat_ms:
            last_hb = t.now()
            await heartbeat(t, v)
    t.counters["wakes"] += 1
    await _power(t, True)
    sb.reset(t.now())
    t.net_allowed = True
    t.state = RUN
    t.note("info", "awake: %s V", v)


async def heartbeat(t, volts):
    """While asleep: modem up, say we are alive, send what is queued, modem down."""
    from telelogger.status import publish_status

    t.counters["heartbeats"] += 1
    await _power(t, True)
    try:
        await t.connect()
        await publish_status(t, {"standby": True, "heartbeat": True, "voltage": volts})
        await t.drain(t.flush_ms)
    except MemoryError:
        raise
    except Exception as e:
        t.note("warn", "heartbeat failed: %s", e)
    await _disconnect(t)
    await _power(t, False)
