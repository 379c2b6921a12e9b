# What standby does (the rules that decide when: standby.py): flush, status, modem and GNSS off,
# light sleep polling the battery, heartbeats, wake. Imported on entry, unloaded after waking.
from core.errors import lookup
from telelogger.tasks import FLUSH, RUN, STANDBY, isawait

STANDBY_POLL_MS = 5000  # official: poll ATRV every 5 s while asleep


async def resume(t):
    """Back to RUN after standby was cut short (a memory fault inside enter())."""
    await _power(t, True)
    t.net_allowed = True
    t.state = RUN


async def _coproc(t, on):
    """The co-processor's low-power mode in standby (official: ATR + ATLP) and its wake (ATI until it
    answers); the OBD task initialises the link again after RUN resumes."""
    name = "wake" if on else "low_power"
    fn = getattr(t.obd, name, None) if t.obd is not None else None
    if fn is None:
        return
    try:
        r = fn()
        if isawait(r):
            await r
    except MemoryError:
        raise
    except Exception as e:
        t.note("warn", "co-processor %s: %s", name, e)


async def _power(t, on):
    if on:
        await _coproc(t, True)
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
    if not on:
        await _coproc(t, False)


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
    """Engine off: flush what we can, modem off properly, sleep until the voltage rises. (In steps:
    each function's bytecode is one allocation, on a heap that has more room in small pieces.)"""
    sb = t.standby
    t.note("info", "standby: %s V, stationary %d s", sb.voltage, (t.now() - sb.last_motion_ms) // 1000)
    t.counters["standby"] += 1
    t.state = FLUSH
    await flush(t)
    t.net_allowed = False
    await _disconnect(t)
    await _power(t, False)
    t.state = STANDBY
    v = await sleep(t, sb)
    c = t.counters
    c["wakes"] = c.get("wakes", 0) + 1  # (counted from the first: not a boot name)
    await _power(t, True)
    sb.last_motion_ms = t.now()  # the motion timer restarts: no standby again at once
    sb.low_since_ms = None
    t.net_allowed = True
    t.state = RUN
    t.note("info", "awake: %s V", v)


# (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
async def flush(t):
    """enter's first step: the record of the samples so far, the queue sent, the standby status."""
    try:
        t.build_record()
    except MemoryError:
        raise
    except Exception as e:  # flash full: the record stays in RAM (loop.build_record), standby goes on
        t.note("error", "store append failed: %s", e)
    await t.drain(t.flush_ms)
    try:
        if t.pub.connected():
            await lookup("telelogger.statusmsg", "publish_status", t, {"standby": True})
    except MemoryError:
        raise
    except Exception as e:
        t.note("warn", "standby status: %s", e)


async def sleep(t, sb):
    """enter's sleep: light sleep polling the battery, heartbeats, until the voltage says the engine
    runs -> the last voltage read."""
    from telelogger.sampler import read_voltage

    last_hb = t.now()
    v = None
    while True:
        if t.wdt is not None:
            t.wdt.feed()
        await _sleep_hook(t, STANDBY_POLL_MS)
        v = await read_voltage(t)
        if v is not None:
            sb.battery(v, t.now())
        if v is not None and v >= sb.voltage_wake:  # the alternator charges: the engine runs
            return v
        if sb.heartbeat_ms and t.now() - last_hb >= sb.heartbeat_ms:
            last_hb = t.now()
            await heartbeat(t, v)


async def heartbeat(t, v):
    """While asleep: modem up, say we are alive, send what is queued, modem down."""
    c = t.counters
    c["heartbeats"] = c.get("heartbeats", 0) + 1
    await _power(t, True)
    try:
        await t.connect()
        await lookup("telelogger.statusmsg", "publish_status", t, {"standby": True, "heartbeat": True, "voltage": v})
        await t.drain(t.flush_ms)
    except MemoryError:
        raise
    except Exception as e:
        t.note("warn", "heartbeat failed: %s", e)
    await _disconnect(t)
    await _power(t, False)
