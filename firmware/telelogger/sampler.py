# Sampling tasks of the telelogger: OBD PIDs on per-PID intervals (with back-off for failing
# PIDs and a re-init after rounds without any answer) and the vehicle checks (VIN, DTCs), battery
# voltage, signal and the status (one task), GNSS fixes (no task: the record task takes them, gnss_sample). Each
# puts (key, value) samples into the telelogger; loop.py turns them into records. Few tasks: each costs ~430 bytes of heap while it
# runs, so jobs that share a link or are short polls share a task; a MemoryError in such a job
# is still a handled fault of its own (tasks.fault, under the job's name) that leaves the other
# job's state as it was.
from core.compat import const
from telelogger.tasks import K_BATTERY, K_SIGNAL, RUN, acall, fault, isawait, turn, unload

# const(): inlined by MicroPython; the _names are not even kept as globals (no name on the heap)
_MAX_OBD_ROUNDS_FAILED = const(3)  # like the official MAX_OBD_ERRORS: re-init the link after this
_OBD_BACKOFF_MAX_MS = const(60000)
_OBD_REINIT_MS = const(10000)
_VEHICLE_MS = const(5000)  # the vehicle check's first run, and its retry while the ECU never answered
_PID_SPEED = const(0x0D)

# the log texts (telelogger/texts.py, looked up when one is written: Telelogger.note), by number
_T_VEHICLE_CHECK = const(17)
_T_OBD_INIT = const(18)
_T_OBD_SILENT = const(19)
_T_BATTERY = const(24)
_T_SIGNAL = const(25)
_T_NET_TIME = const(26)

# Sample keys (numbers fixed by the architecture contract and telelogger/keys.py, which names
# them; test_loop_e2e checks they agree). Constants here so the loop does not load the table.
_K_OBD = const(0x100)
_K_LAT = const(0x0A)
_K_TIME = const(0x10)
_K_DATE = const(0x11)
_K_LNG = const(0x0B)
_K_ALT = const(0x0C)
_K_SPEED = const(0x0D)
_K_HEADING = const(0x0E)
_K_SATS = const(0x0F)
_K_HDOP = const(0x12)


class Pid:
    """One configured OBD PID and its schedule: interval_ms, due_ms (loop ms of the next read),
    fails (consecutive failures: back-off) and errors (total, for the status's pid_errors)."""

    def __init__(self, pid, interval_ms, due_ms=0):
        self.pid = pid
        self.interval_ms = interval_ms
        self.due_ms = due_ms
        self.fails = 0
        self.errors = 0


# ---- OBD ----
async def obd_task(t):
    """The PID reads, and the vehicle checks (telelogger/vehicle.py: VIN, DTCs) on the same link:
    the first _VEHICLE_MS in, again after the ms vehicle.check returns (_VEHICLE_MS while no PID
    was read yet). Sleeps until whichever is due first: the OBD part's `wake` or the check's `due`."""
    up = False
    failed = 0
    wake = 0
    due = t.now() + _VEHICLE_MS
    while True:
        now = t.now()
        if now < wake and now < due:
            await t.sleep(min(wake, due) - now)
            continue
        if now >= due:
            ms = _VEHICLE_MS
            # not while another heavy job runs (the connect, tasks.turn): the PID reads do not wait for one,
            # the check comes again after _VEHICLE_MS
            if t.counters["obd_reads"] and not t.rare.locked():
                await t.rare.acquire()  # (free: at once)
                try:  # imported per check, dropped after (its state lives on t)
                    from telelogger import vehicle

                    ms = await vehicle.check(t)
                except MemoryError as e:
                    # the check's own handled fault: the OBD part keeps its state
                    await fault(t, "vehicle", e)
                    if t.reset_reason is not None:
                        return
                except Exception as e:  # a defect in the check must not stop the PID reads
                    t.note("warn", _T_VEHICLE_CHECK, e)
                finally:
                    vehicle = None
                    unload("vehicle")
                    t.rare.release()
            due = t.now() + ms
            continue
        if t.state != RUN:
            up = False
            wake = now + 500
            continue
        if not up:
            # the link's (re)initialisation and which PIDs the vehicle supports: telelogger/obdinit.py,
            # imported for it (once its turn came: tasks.turn) and forgotten again
            mine = await turn(t)
            why = obdinit = None
            try:
                from telelogger import obdinit  # (in the try: a MemoryError here releases the turn too)

                await obdinit.init(t)
            except MemoryError:
                raise
            except Exception as e:
                why = str(e)
            finally:
                obdinit = None
                unload("obdinit")
                if mine:
                    t.rare.release()
            if why is not None:
                t.note("warn", _T_OBD_INIT, why)
                why = None
                wake = t.now() + _OBD_REINIT_MS
                continue
            up = True
            failed = 0
            now = t.now()
            for p in t.pids:
                p.due_ms = now
                p.fails = 0
        now = t.now()
        ok = bad = 0
        for p in t.pids:
            if p.due_ms > now:
                continue
            # one read of a due PID; a failure backs it off exponentially (up to _OBD_BACKOFF_MAX_MS)
            at = t.now()
            try:
                v = t.obd.read_pid(p.pid)  # not acall(): no generator and args tuple per read
                if isawait(v):
                    v = await v
            except MemoryError:
                raise  # the loop's memory fault handling, not a PID failure
            except Exception as e:  # one PID failing must not stop the others
                v = None
                t.note("debug", "PID %02X: %s", p.pid, e)
            iv = p.interval_ms
            if v is None:
                bad += 1
                p.fails += 1
                p.errors += 1
                t.counters["obd_errors"] += 1
                p.due_ms = at + min(iv << min(p.fails, 6), max(_OBD_BACKOFF_MAX_MS, iv))
                continue
            ok += 1
            p.fails = 0
            t.counters["obd_reads"] += 1
            t.sample(_K_OBD | p.pid, v)
            if p.pid == _PID_SPEED:
                t.standby.motion(v, at)
            p.due_ms = p.due_ms + iv if p.due_ms + iv > at else at + iv
        if ok:
            failed = 0
        elif bad:
            failed += 1
            if failed >= _MAX_OBD_ROUNDS_FAILED:
                t.note("warn", _T_OBD_SILENT, failed)
                up = False
                wake = 0
                continue
        now = t.now()
        nxt = now + 1000
        for p in t.pids:
            if p.due_ms < nxt:
                nxt = p.due_ms
        wake = now + max(10, min(nxt - now, 1000))


# ---- GNSS ----
def gnss_sample(t, last):
    """The GNSS fix's samples, taken by the record task (Telelogger.record_task) every t.gnss_ms: no
    I/O here, so no task of its own. `last`: the fix's update count at the previous call -> the
    current one (a fix not updated since is not taken twice)."""
    # the source's gnss.nmea.Fix: gnss.sources expose it as a .fix() method, simpler sources
    # (test doubles) as a .fix attribute
    f = getattr(t.gnss, "fix", None)
    if f is not None and not hasattr(f, "valid"):
        f = f()
    if f is None or not f.valid or f.lat is None:
        return last
    stamp = getattr(f, "updates", None)
    if stamp is not None and stamp == last:
        return last
    t.counters["gnss_fixes"] += 1
    now = t.now()
    utc = getattr(f, "epoch", None)
    if utc is not None:
        utc = utc * 1000 + (getattr(f, "ms", 0) or 0)
        # the fix is at most one interval old: good enough for a log timestamp
        t.set_utc(utc, True)
    if f.hour is not None:
        t.sample(_K_TIME, f.hour * 1000000 + f.minute * 10000 + f.second * 100 + (f.ms or 0) // 10)
    if f.day is not None:
        t.sample(_K_DATE, f.day * 10000 + f.month * 100 + f.year % 100)
    t.sample(_K_LAT, f.lat)
    t.sample(_K_LNG, f.lon)
    t.sample(_K_ALT, f.alt)
    t.sample(_K_SPEED, f.speed_kmh)
    t.sample(_K_HEADING, f.course)
    t.sample(_K_SATS, f.sats)
    t.sample(_K_HDOP, f.hdop)
    t.standby.motion(f.speed_kmh, now)
    return stamp


# ---- battery / signal ----
async def read_voltage(t):
    b = t.battery
    try:
        if b is not None:
            v = await acall(getattr(b, "voltage", b))
            if v is not None:
                return v
        if t.obd is not None and hasattr(t.obd, "battery_voltage"):
            return await acall(t.obd.battery_voltage)
    except MemoryError:
        raise
    except Exception as e:
        t.note("debug", _T_BATTERY, e)
    return None


async def poll_task(t):
    """The battery voltage every t.battery_ms (a battery or an OBD link: read_voltage) and the signal
    and network time every t.signal_ms (a modem), both at start, and the status every t.status_ms,
    the first one interval in (telelogger/statusmsg.py's tick, imported per interval and dropped
    again: the status message, the OTA trial's healthy mark). One task; a MemoryError in one job is
    a handled fault under its name ("battery", "signal", "status"), after which that job runs again."""
    b = s = t.now()  # when each poll is due; None: nothing to poll
    st = b + t.status_ms  # when the status is due
    first = True  # the first acked status of this boot marks the build healthy (OTA trial: statusmsg.tick)
    if t.battery is None and t.obd is None:
        b = None
    if t.modem is None:
        s = None
    while True:
        name = "battery"
        try:
            if b is not None and t.now() >= b:
                if t.state == RUN:
                    v = await read_voltage(t)
                    if v is not None:
                        t.sample(K_BATTERY, v)
                        t.standby.battery(v, t.now())
                b = t.now() + t.battery_ms
            name = "signal"
            m = t.modem  # (s is None without one)
            if s is not None and m is not None and t.now() >= s:
                if t.state == RUN:
                    v = None
                    try:  # dBm from the modem's signal_dbm() (net.cellular's modem: AT+CSQ converted there)
                        v = await acall(m.signal_dbm)
                    except MemoryError:
                        raise
                    except Exception as e:
                        t.note("debug", _T_SIGNAL, e)
                    if v is not None and t.last.get(K_SIGNAL) != v:  # official: CSQ stored on change
                        t.sample(K_SIGNAL, v)
                    if t.utc_offset_ms is None and hasattr(m, "utc_ms"):
                        try:
                            v = await acall(m.utc_ms)
                            if v:
                                t.set_utc(v)
                        except MemoryError:
                            raise
                        except Exception as e:
                            t.note("debug", _T_NET_TIME, e)
                s = t.now() + t.signal_ms
            name = "status"
            now = t.now()
            if now >= st:
                trial = t.ota_trial_ms
                # statusmsg.tick's two jobs: a status to publish (RUN, connected), a build on trial past
                # its deadline; neither: nothing imported (an outage, the bring-up at boot)
                if (t.state == RUN and t.pub.connected()) or (trial is not None and now >= trial):
                    # not beside another heavy job (a vehicle check, the OBD start, a connect: tasks.turn)
                    mine = await turn(t)
                    try:
                        from telelogger import statusmsg  # (in the try: a MemoryError here releases the turn too)

                        first = await statusmsg.tick(t, first)
                    finally:
                        statusmsg = None
                        unload("statusmsg")
                        if mine:
                            t.rare.release()
                st = t.now() + t.status_ms
        except MemoryError as e:
            await fault(t, name, e)
            if t.reset_reason is not None:
                return
            continue
        w = st
        if b is not None and b < w:
            w = b
        if s is not None and s < w:
            w = s
        await t.sleep(max(0, w - t.now()))

