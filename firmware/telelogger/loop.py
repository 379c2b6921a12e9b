# The telelogger: asyncio tasks that sample the vehicle (sampler.py: OBD PIDs on per-PID intervals,
# battery, signal, status; GNSS and the standby rules in the record task), build records, append them
# to the flash store, and a sender that drains the store oldest-first over the publisher, acking only
# after the broker's PUBACK. Nothing is published directly: every sample goes through the store first,
# so a network outage or a reset loses nothing that was appended (official firmware issues #69/#185).
# status.py: watchdog; cmdrun.py: answering commands (cmdhandlers.py + commands.py: imported with the
# first); standby.py: when to sleep (standby_io.py: what sleeping does, imported on entry); tasks.py:
# run states, shared helpers, MemoryError as a handled fault (guarded); loopinit.py: building the
# Telelogger, loopstart.py: starting its tasks (boot only); loopnet.py: draining, messages, a refused time's warning
# (both imported per call: Telelogger.__getattr__).
import asyncio

from core.compat import const
from net.publisher import backoff_ms
from telelogger.tasks import FLUSH, RUN, STANDBY, fault, text, turn, unload  # noqa: F401 - the run states, importable from here too

# const(): inlined by MicroPython, no name on the heap (tests use the documented values).
# Record less often while parked (official DATA_INTERVAL_TABLE {1000, 2000, 5000} ms over
# STATIONARY_TIME_TABLE {10, 60} s): (stationary ms, record interval multiplier), longest first.
_STATIONARY_TIERS = const(((60000, 5), (10000, 2)))

# Records kept in RAM while the flash refuses writes (full): beyond this the oldest is dropped, counted.
_UNSAVED_MAX = const(16)

# the log texts (telelogger/texts.py, looked up when one is written: note), by number
_T_STORE_FAILED = const(15)
_T_NET_RETRY = const(16)
_T_CONNECTED = const(27)

# The sample keys whose latest value t.last keeps: what the status (signal, battery) and the host
# runner's progress line (telelogger/progress.py: rpm, speed, lat, lng too) show. The other keys go
# only into the record being built (t.pending): no table of every key's latest value on the heap.
_SHOWN = const((0x10C, 0x10D, 0x0A, 0x0B, 0x24, 0x81))

# UTC the loop believes (issue 11): a GNSS or network time before _UTC_MIN_MS (2024-01-01 00:00 UTC:
# no build of this firmware is older; raise it with the releases. GPS week-rollover receivers report
# dates 1024 weeks back, 1999/2006/2019-era) or from _UTC_MAX_MS (2100-01-01) on is refused, and so is a
# GNSS time more than _UTC_AGREE_MS (10 min) away from a network time already known. A refusal is
# logged once per source and changes nothing: UTC stays unknown (or as it was) until a plausible time.
_UTC_MIN_MS = const(1704067200000)
_UTC_MAX_MS = const(4102444800000)
_UTC_AGREE_MS = const(600000)


def __getattr__(name):
    """loop.next_boot, kept importable from here: telelogger/loopinit.py (boot only, imported per call)."""
    if name == "next_boot":
        from telelogger import loopinit

        v = getattr(loopinit, name)
        unload("loopinit")
        return v
    raise AttributeError(name)


class Telelogger:
    """cfg: the validated config dict (telelogger.config; anything else is validated). pub (the
    publisher): net.publisher.Publisher. store: telelogger.store.Store. obd: obdii Obd (init, read_pid,
    battery_voltage, supported). gnss: a source with a `fix` (gnss.nmea.Fix). modem: optional, for
    signal (signal_dbm() or csq()), network time (utc_ms()) and power_off()/power_on(). battery:
    optional object with voltage() (ADC) or a callable; else obd.battery_voltage() (ATRV). clock:
    core.compat.Clock (fake in tests). wdt: object with feed(). board: optional light_sleep(ms)
    (standby), reset(). codec: encode_record/encode_batch (default telelogger.record); commands: a
    CommandHandler (default built from cfg['secrets']['hmac_key'] when the first command arrives).
    boot: this boot's number (next_boot()), so records stamped before UTC was known are corrected
    only with this boot's offset. reset: callable(reason) the loop calls when memory faults persist
    (default board.reset(); False: none, the caller resets once run() returns); reset_path: file
    where that reason is kept for the next boot's status (None: not kept). Of the config the loop keeps only the values it reads (telelogger/loopinit.py):
    t.cfg_path (where config_set writes; telelogger/cfgcmd.py reads the running config from flash per
    command), t.dtc_ms (the VIN/DTC checks' interval) and t.cmd_cfg (the command key and settings)."""

    # Fields set by telelogger/loopinit.py's init() (all of them are there) that this class reads but
    # does not assign, declared for the type checker (pyright) only: a bare annotation compiles to
    # nothing on MicroPython, and so does this `if 1 - 1` (mpy-cross folds it to a constant false)
    # while pyright still reads its imports (typing.TYPE_CHECKING: no such module on MicroPython).
    # Quoted: CPython evaluates class annotations.
    if 1 - 1:
        from typing import Any

        from core.compat import Clock
        from telelogger.standby import Standby
        from telelogger.store import Store
    pub: "Any"  # a net.publisher.Publisher transport (its methods are the transport's: no stubs there)
    store: "Store"
    clock: "Clock"
    codec: "Any"  # telelogger.record, or a test's encode_record/encode_batch
    log: object
    pick: object
    gnss: "Any"  # a GNSS source with a fix (gnss.sources), or None
    gnss_ms: int
    standby: "Standby"
    lock: asyncio.Lock
    boot: int
    device_id: str
    t_data: str
    t_cmd: str
    t_ota: "str | None"  # <prefix>/<id>/ota, None when commands are off or no key (telelogger/ota.py)
    otaq: list
    encoding: str
    batch_max: int
    batch_age_ms: int
    payload_max: int
    backoff_min_ms: int
    backoff_max_ms: int
    record_ms: int
    sync_ms: int
    state: str
    net_allowed: bool
    reset_reason: "str | None"
    pids: list
    unsaved: list
    cmdq: list
    beats: dict
    last: dict
    pending: dict
    counters: dict

    def __init__(self, cfg, pub, store, **kw):
        from telelogger import loopinit

        loopinit.init(self, cfg, pub, store, **kw)
        unload("loopinit")

    def __getattr__(self, name):
        """The loop's operations that do not run per sample: functions of a module imported for the
        call and forgotten again, taking the Telelogger first (as obdii.Obd's rare methods do) --
        drain(ms) (standby, the host runner's end), on_message(topic, payload) (the publisher's callback:
        an incoming message queued), msg_task(ota=False) (the commands or OTA chunks on_message queued), refuse_utc(...) (set_utc's warning): telelogger/loopnet.py; start(),
        run(duration_ms=None): telelogger/loopstart.py. Any other name: AttributeError."""
        if name in ("drain", "on_message", "msg_task", "refuse_utc"):
            m = "loopnet"
        elif name in ("start", "run"):
            m = "loopstart"
        else:
            raise AttributeError(name)

        def op(*a):
            f = getattr(__import__("telelogger" + "." + m, None, None, ("_",)), name)  # (two names: "telelogger."
            # would be a str constant of this module)
            unload(m)  # the call holds the function (and its module's globals) for as long as it runs
            return f(self, *a)

        return op

    # ---- helpers ----
    def now(self):
        """Monotonic ms since start that never wraps (ticks_ms wraps on MicroPython)."""
        t = self.clock.ticks_ms()
        self._mono += self.clock.diff(t, self._last_ticks)
        self._last_ticks = t
        return self._mono

    def set_utc(self, utc_ms, gnss=False):
        """Record that `utc_ms` is the UTC time now (from GNSS when gnss, else the network's) -> True;
        a time refused as implausible (_UTC_MIN_MS, _UTC_MAX_MS, _UTC_AGREE_MS above) -> False."""
        utc_ms = int(utc_ms)
        off = utc_ms - self.now()
        net = self.net_offset_ms
        ok = _UTC_MIN_MS <= utc_ms < _UTC_MAX_MS
        if ok and (not gnss or net is None or abs(off - net) <= _UTC_AGREE_MS):
            self.utc_offset_ms = off
            if not gnss:
                self.net_offset_ms = off
            return True
        bit = 1 if gnss else 2
        if not self.utc_refused & bit:  # once per source: what was refused and why (loopnet.refuse_utc)
            self.utc_refused |= bit
            self.refuse_utc(utc_ms, off - net if ok else None, gnss)
        return False

    def utc_ms(self):
        """UTC ms now, or None while unknown."""
        return None if self.utc_offset_ms is None else self.now() + self.utc_offset_ms

    def note(self, level, fmt, *args):
        """A log line: fmt % args at `level` (the logger's method name); fmt a text's number
        (telelogger/texts.py, looked up only when there is a logger) or the text itself."""
        if self.log is not None:
            getattr(self.log, level)(text(fmt) if isinstance(fmt, int) else fmt, *args)

    def sample(self, key, value):
        """A sample for the record being built (t.pending: its keys stay, a value None is not taken)."""
        if value is None:
            return
        self.pending[key] = value
        if key in _SHOWN:
            self.last[key] = value
        self.counters["samples"] += 1

    def sleep(self, ms):
        return self.clock.sleep_ms(ms)

    # ---- records ----
    def build_record(self, flush=True):
        """Turn the samples gathered since the last record into one record -> seq of the last record
        stored. Records are written to flash once per queue.sync_ms window with one sync (flash wear:
        each synced append costs LittleFS about one erase): flush=False (the record task) keeps the
        record in RAM until the window is over; flush=True (sending, standby, stopping) writes now.
        A failed flash write (full, I/O error) keeps the records in RAM (up to _UNSAVED_MAX, oldest
        first out, counted in counters['unsaved_dropped']) and re-raises; the next call stores the kept
        records first, in order."""
        p = self.pending  # keys stay from record to record: no dict rebuilt per record
        samples = []  # (a loop, not a comprehension: that would be one more function on the heap)
        for kv in p.items():
            if kv[1] is not None:
                samples.append(kv)
        if samples:
            samples.sort()  # in place: one list per record
            now = self.now()
            if self.utc_offset_ms is not None:
                rec = self.codec.encode_record(now + self.utc_offset_ms, True, samples)
            else:
                rec = self.codec.encode_record(now, False, samples, self.boot)
            self.unsaved.append(rec)
            for k in p:  # only now: a MemoryError above keeps the samples for the next try
                p[k] = None
        seq = None
        u = self.unsaved
        now = self.now()
        if not u or (not flush and self.sync_ms and now - self._synced_ms < self.sync_ms
                     and len(u) < _UNSAVED_MAX):
            return seq
        try:
            while u:
                try:
                    seq = self.store.append(u[0], sync=False)
                except MemoryError:
                    raise
                except Exception:
                    self.counters["store_errors"] += 1
                    while len(u) > _UNSAVED_MAX:
                        u.pop(0)
                        self.counters["unsaved_dropped"] += 1
                    raise
                u.pop(0)
                self.counters["records"] += 1
                self.counters["last_seq"] = seq
        finally:
            self.store.sync()  # before anything can peek: one flash sync for the whole window
            self._synced_ms = now
        return seq

    async def record_task(self):
        """The loop's clock for what needs no I/O of its own, in one task (each task costs ~460 bytes
        while it runs): a record of the samples gathered every record_ms (longer while parked:
        _STATIONARY_TIERS), the standby rules every second (telelogger/standby.py; standby_io.enter
        runs standby from here and returns once awake) and the GNSS fix's samples every gnss_ms
        (sampler.gnss_sample). A MemoryError in one part is a handled fault under that part's name
        ("record", "standby", "gnss"), after which the task goes on."""
        from telelogger.sampler import gnss_sample

        rec = fix = 0  # when the record and the GNSS samples are due
        sb = self.now() + 1000  # the standby rules: once a second, the first a second in
        last = None  # the fix's update count at the last GNSS samples
        while True:
            now = self.now()
            self.beats["record"] = now
            name = "standby"
            try:
                if self.state != RUN:  # a memory fault inside standby: wake fully, then judge again
                    from telelogger import standby_io

                    await standby_io.resume(self)
                    del standby_io
                    unload("standby_io")
                name = "record"
                if now >= rec:
                    try:
                        self.build_record(False)
                    except MemoryError:
                        raise
                    except Exception as e:  # a failed flash write is reported, sampling goes on
                        self.note("error", _T_STORE_FAILED, e)
                    ms = self.record_ms  # parked: longer (_STATIONARY_TIERS)
                    still = now - self.standby.last_motion_ms
                    for tier, k in _STATIONARY_TIERS:
                        if still >= tier:
                            ms *= k
                            break
                    rec = now + ms
                name = "standby"
                if now >= sb:
                    sb = now + 1000
                    if self.standby.should_sleep(now):
                        from telelogger import standby_io

                        await standby_io.enter(self)
                        del standby_io
                        unload("standby_io")
                        continue
                name = "gnss"
                if self.gnss is not None and now >= fix:
                    last = gnss_sample(self, last)
                    fix = now + self.gnss_ms
            except MemoryError as e:
                await fault(self, name, e)
                if self.reset_reason is not None:
                    return
                continue
            w = rec if rec < sb else sb
            if self.gnss is not None and fix < w:
                w = fix
            await self.sleep(w - now)

    # ---- sending ----
    async def connect(self):
        """Connects the publisher, counts it, subscribes the command (and OTA) topics. Resident: the
        first connect is the boot's peak (the bring-up's modules in flight)."""
        mine = await turn(self)  # the bring-up's modules not on top of the OBD start's (tasks.turn)
        try:
            try:
                await self.pub.connect()
            except Exception:
                self.counters["connect_errors"] += 1
                raise
            if self.counters["connects"]:
                self.counters["reconnects"] += 1
            self.counters["connects"] += 1
            self.pub.on_message(self.on_message)
            await self.pub.subscribe(self.t_cmd, 1)
            if self.t_ota:  # OTA chunks (FORMAT.md "OTA updates"): only with commands on and a key
                await self.pub.subscribe(self.t_ota, 1)
        finally:
            if mine:
                self.rare.release()
        self.note("info", _T_CONNECTED, self.store.pending())

    async def send_batch(self):
        """Publish the oldest pending records as one batch; ack them after PUBACK.
        Returns the number of records sent (0 if none pending). Raises on failure (nothing acked)."""
        n = self.batch_max
        while True:
            entries = self.store.peek(n)
            if not entries:
                return 0
            payload = self.codec.encode_batch(self.device_id, entries, self.encoding, self.utc_offset_ms, self.boot)
            if len(payload) <= self.payload_max or len(entries) == 1:
                break
            n = max(1, len(entries) // 2)
        async with self.lock:
            await self.pub.publish(self.t_data, payload, 1)
        # publish() returned: the broker has the batch (PUBACK). Only now forget it.
        last = entries[-1][0]
        self.store.ack(last)
        c = self.counters
        c["batches"] += 1
        c["sent"] += len(entries)
        c["acked_seq"] = last
        c["last_bytes"] = len(payload)
        self.last_send = self.now()
        return len(entries)

    async def sender_task(self):
        fails = 0
        while True:
            self.beats["send"] = self.now()
            if not self.net_allowed:
                await self.sleep(500)
                continue
            try:
                if not self.pub.connected():
                    await self.connect()
                    fails = 0
                n = self.store.pending()  # due: a full batch, the batch age, a flush, standby
                if n and (self.flush_req or n >= self.batch_max or self.state != RUN
                          or self.now() - self.last_send >= self.batch_age_ms):
                    await self.send_batch()
                    fails = 0
                    if not self.store.pending():
                        self.flush_req = False
                    continue
            except MemoryError:
                raise
            except Exception as e:
                fails += 1
                # exponential with jitter: a fleet that lost the same broker does not come back in step
                wait = backoff_ms(fails, self.backoff_min_ms, self.backoff_max_ms, self.pick)
                self.counters["send_errors"] += 1
                self.note("warn", _T_NET_RETRY, e, self.store.pending(), wait)
                await self.sleep(wait)
                continue
            await self.sleep(min(200, self.batch_age_ms))

    # ---- run ----
    def stop(self):
        for x in self.tasks + [self.cmd_run, self.ota_run]:
            if x is not None:
                x.cancel()
        self.tasks = []
        self.cmd_run = self.ota_run = None
