# The telelogger: asyncio tasks that sample the vehicle (sampler.py: OBD PIDs on per-PID
# intervals, GNSS, battery, signal), build records, append them to the flash store, and a sender
# that drains the store oldest-first over the publisher, acking only after the broker's PUBACK.
# Nothing is published directly: every sample goes through the store first, so a network
# outage or a reset loses nothing that was appended (official firmware issues #69/#185).
# status.py: status, the command queue, watchdog (cmdhandlers.py + commands.py: imported with the
# first command); standby.py: when to sleep (standby_io.py: what sleeping does, imported on entry);
# memfault.py: MemoryError as a handled fault; tasks.py: run states and helpers they all share.
import asyncio

from core.compat import Clock
from net.publisher import backoff_ms, jitter_pick
from telelogger import memfault
from telelogger.sampler import Pid
from telelogger.standby import Standby
from telelogger.tasks import FLUSH, RUN, STANDBY  # noqa: F401 - the run states, importable from here too

# Record less often while parked (official DATA_INTERVAL_TABLE {1000, 2000, 5000} ms over
# STATIONARY_TIME_TABLE {10, 60} s): (stationary ms, record interval multiplier), longest first.
STATIONARY_TIERS = ((60000, 5), (10000, 2))

# Records kept in RAM while the flash refuses writes (full): beyond this the oldest is dropped, counted.
UNSAVED_MAX = 16

def next_boot(path):
    """Increments and returns the boot counter kept in the file `path` (0 if unreadable)."""
    n = 0
    try:
        with open(path) as f:
            n = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pass
    n += 1
    try:
        with open(path, "w") as f:
            f.write(str(n))
    except OSError:
        pass
    return n


def _validated(cfg):
    """cfg as telelogger.config.validate returns it (the loop reads no defaults of its own: one
    home per fact). A validated config carries "secrets"; anything else is validated here,
    without requiring what only the transports need (broker.host, certificates)."""
    if cfg is not None and "secrets" in cfg:
        return cfg
    from telelogger import config

    return config.validate(cfg or {}, False)


class Telelogger:
    """cfg: the validated config dict (telelogger.config). publisher: net.publisher.Publisher.
    store: telelogger.store.Store. obd: obdii Obd (init, read_pid, battery_voltage, supported).
    gnss: a source with a `fix` (gnss.nmea.Fix). modem: optional, for signal (signal_dbm() or
    csq()), network time (utc_ms()) and power_off()/power_on(). battery: optional object with
    voltage() (ADC) or a callable; else obd.battery_voltage() (ATRV). clock: core.compat.Clock
    (fake in tests). wdt: object with feed(). board: optional light_sleep(ms) (standby), reset().
    codec: the encode module (default telelogger.encode); commands: a CommandHandler (default
    built from cfg['secrets']['hmac_key'] when the first command arrives). boot: this boot's number
    (next_boot()), so records stamped before UTC was known are corrected only with this boot's
    offset. reset: callable(reason) the loop calls when memory faults persist (default
    board.reset()); reset_path: file where that reason is kept for the next boot's status
    (None: not kept)."""

    def __init__(self, cfg, publisher, store, obd=None, gnss=None, modem=None, battery=None, clock=None,
                 wdt=None, board=None, codec=None, commands=None, device_id=None, log=None, boot=0,
                 cmd_counter_path=None, reset=None, reset_path=None):
        cfg = _validated(cfg)
        self.cfg = cfg
        self.pub = publisher
        self.store = store
        self.obd = obd
        self.gnss = gnss
        self.modem = modem
        self.battery = battery
        self.clock = clock or Clock()
        self.wdt = wdt
        self.board = board
        self.log = log
        self.boot = boot  # boot counter: monotonic timestamps are per boot (encode.py)
        if codec is None:
            from telelogger import encode as codec
        self.codec = codec
        self.device_id = device_id or cfg["device_id"]
        base = "%s/%s/" % (cfg["topic_prefix"], self.device_id)
        self.t_data = base + "data"
        self.t_status = base + "status"
        self.t_cmd = base + "cmd"
        self.t_reply = base + "reply"
        self.encoding = cfg["encoding"]
        b = cfg["batch"]
        self.batch_max = b["max_records"]
        self.batch_age_ms = b["max_age_ms"]
        self.payload_max = b["max_bytes"]
        iv = cfg["intervals"]
        self.battery_ms = iv["battery_ms"]
        self.signal_ms = iv["signal_ms"]
        self.status_ms = iv["status_ms"]
        self.gnss_ms = cfg["gnss"]["interval_ms"]
        self.backoff_min_ms = iv["reconnect_min_ms"]
        self.backoff_max_ms = iv["reconnect_max_ms"]
        self.pick = jitter_pick  # backoff jitter source (tests may make it deterministic)
        self.wdt_ms = iv["wdt_feed_ms"]
        o = cfg["obd"]
        self.obd_enabled = o["enabled"] and obd is not None
        pids = o["pids"]
        self.pids = [Pid(int(h, 16), pids[h]) for h in sorted(pids)]
        rec = iv["record_ms"]
        if rec is None:  # config: the shortest PID interval, 1000 without PIDs
            rec = min([p.interval_ms for p in self.pids]) if self.pids else 1000
        self.record_ms = rec
        sb = cfg["standby"]
        self.flush_ms = sb["flush_s"] * 1000
        self._mono = 0
        self._last_ticks = self.clock.ticks_ms()
        self.standby = Standby(sb, 0)
        self.state = RUN
        self.utc_offset_ms = None  # utc_ms - mono_ms, once GNSS or network time is known
        self.pending = {}  # key -> value for the record being built
        self.unsaved = []  # encoded records not on flash yet (sync window, failed write), oldest first
        self.sync_ms = cfg["queue"]["sync_ms"]  # records reach flash once per window (flash wear)
        self._synced_ms = 0
        self.last = {}  # latest value per key, for status/progress
        self.last_send = 0
        self.flush_req = False
        self.reboot_req = False
        self.net_allowed = True
        self.cmdq = []
        self.cmd_ev = asyncio.Event()
        self.lock = asyncio.Lock()
        self.beats = {}
        self.tasks = []
        self.commands = commands
        self.cmd_counter_path = cmd_counter_path
        self.refused_reply_ms = None  # when a refused command last got a reply (status.cmd_task)
        self.reset_cb = reset
        self.reset_path = reset_path
        self.last_reset = memfault.take_reason(reset_path)  # why the previous boot reset itself
        self.reset_reason = None  # set when this run gave up (memory faults): run() returns
        self._mem_recent = []  # loop ms of recent memory faults (memfault.py)
        self._mem_logged = []  # task names whose memory fault was logged already (memfault.py)
        self._done = asyncio.Event()
        self.counters = {
            "records": 0, "samples": 0, "obd_reads": 0, "obd_errors": 0, "obd_inits": 0, "gnss_fixes": 0,
            "batches": 0, "sent": 0, "send_errors": 0, "connects": 0, "connect_errors": 0, "reconnects": 0,
            "acked_seq": None, "last_seq": None, "last_bytes": 0, "standby": 0, "wakes": 0, "heartbeats": 0,
            "cmds": 0, "status": 0, "wdt_feeds": 0, "store_errors": 0, "unsaved_dropped": 0, "mem_errors": 0,
            "cmds_unanswered": 0,
        }

    def command_handler(self):
        """The CommandHandler, built on the first command (telelogger.commands is imported only
        then); None when commands are off or no hmac_key is configured."""
        if self.commands is None:
            key = self.cfg["secrets"]["hmac_key"]
            c = self.cfg["commands"]
            if key and c["enabled"]:
                from telelogger.commands import CommandHandler
                from telelogger.cmdhandlers import handlers

                self.commands = CommandHandler(key, self.clock, handlers(self), utc_ms=self.utc_ms,
                                               window_s=c["window_s"], nonces=c["nonces"],
                                               counter_path=self.cmd_counter_path, device_id=self.device_id)
        return self.commands

    # ---- helpers ----
    def now(self):
        """Monotonic ms since start that never wraps (ticks_ms wraps on MicroPython)."""
        t = self.clock.ticks_ms()
        self._mono += self.clock.diff(t, self._last_ticks)
        self._last_ticks = t
        return self._mono

    def set_utc(self, utc_ms):
        """Record that `utc_ms` is the UTC time now (GNSS or network time)."""
        self.utc_offset_ms = int(utc_ms) - self.now()

    def utc_ms(self):
        """UTC ms now, or None while unknown."""
        return None if self.utc_offset_ms is None else self.now() + self.utc_offset_ms

    def note(self, level, fmt, *args):
        if self.log is not None:
            getattr(self.log, level)(fmt, *args)

    def beat(self, name):
        self.beats[name] = self.now()

    def sample(self, key, value):
        if value is None:
            return
        self.pending[key] = value
        self.last[key] = value
        self.counters["samples"] += 1

    def sleep(self, ms):
        return self.clock.sleep_ms(ms)

    def set_pid_interval(self, pid, ms):
        for p in self.pids:
            if p.pid == pid:
                p.interval_ms = ms
                p.due_ms = self.now()
                return
        self.pids.append(Pid(pid, ms, self.now()))

    # ---- records ----
    def build_record(self, force=True):
        """Turn the samples gathered since the last record into one record -> seq of the last record
        stored. Records are written to flash once per queue.sync_ms window with one sync (flash wear:
        each synced append costs LittleFS about one erase): force=False (the record task) keeps the
        record in RAM until the window is over; force=True (sending, standby, stopping) writes now.
        A failed flash write (full, I/O error) keeps the records in RAM (up to UNSAVED_MAX, oldest
        first out, counted in counters['unsaved_dropped']) and re-raises; the next call stores the kept
        records first, in order."""
        if self.pending:
            samples = sorted(self.pending.items())
            now = self.now()
            if self.utc_offset_ms is not None:
                rec = self.codec.encode_record(now + self.utc_offset_ms, True, samples)
            else:
                rec = self.codec.encode_record(now, False, samples, self.boot)
            self.unsaved.append(rec)
            self.pending = {}  # only now: a MemoryError above keeps the samples for the next try
        seq = None
        u = self.unsaved
        now = self.now()
        if not u or (not force and self.sync_ms and now - self._synced_ms < self.sync_ms
                     and len(u) < UNSAVED_MAX):
            return seq
        try:
            while u:
                try:
                    seq = self.store.append(u[0], sync=False)
                except MemoryError:
                    raise
                except Exception:
                    self.counters["store_errors"] += 1
                    while len(u) > UNSAVED_MAX:
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
        while True:
            self.beat("record")
            if self.state == RUN:
                try:
                    self.build_record(force=False)
                except MemoryError:
                    raise
                except Exception as e:  # a failed flash write is reported, sampling goes on
                    self.note("error", "store append failed: %s", e)
            await self.sleep(self.record_interval())

    def record_interval(self):
        still = self.standby.stationary_for(self.now())
        for ms, k in STATIONARY_TIERS:
            if still >= ms:
                return self.record_ms * k
        return self.record_ms

    # ---- sending ----
    async def connect(self):
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
        self.note("info", "connected; %d records queued", self.store.pending())

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

    def due(self):
        n = self.store.pending()
        if not n:
            return False
        if self.flush_req or n >= self.batch_max or self.state != RUN:
            return True
        return self.now() - self.last_send >= self.batch_age_ms

    async def sender_task(self):
        fails = 0
        while True:
            self.beat("send")
            if not self.net_allowed:
                await self.sleep(500)
                continue
            try:
                if not self.pub.connected():
                    await self.connect()
                    fails = 0
                if self.due():
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
                self.note("warn", "network: %s; %d records kept, retry in %d ms", e, self.store.pending(), wait)
                await self.sleep(wait)
                continue
            await self.sleep(min(200, self.batch_age_ms))

    async def drain(self, budget_ms):
        """Send what we can within budget_ms (before sleeping, at heartbeats)."""
        t0 = self.now()
        while self.store.pending() and self.now() - t0 < budget_ms:
            try:
                if not self.pub.connected():
                    await self.connect()
                await self.send_batch()
            except MemoryError:
                raise
            except Exception as e:
                self.note("warn", "drain: %s", e)
                await self.sleep(self.backoff_min_ms)

    def on_message(self, topic, payload):
        if topic == self.t_cmd and len(self.cmdq) < 4:
            self.cmdq.append(bytes(payload))
            self.cmd_ev.set()

    # ---- run ----
    def start(self):
        """Create the tasks inside a running event loop."""
        from telelogger import sampler, standby, status

        t = self.tasks
        self._done = asyncio.Event()

        def task(name, fn, *args):
            t.append(asyncio.create_task(memfault.guarded(self, name, lambda: fn(*args))))

        task("record", self.record_task)
        task("send", self.sender_task)
        task("status", status.status_task, self)
        task("cmd", status.cmd_task, self)
        task("wdt", status.wdt_task, self)
        task("standby", standby.standby_task, self)
        if self.obd_enabled:
            task("obd", sampler.obd_task, self)
            task("vehicle", status.vehicle_task, self)
        if self.gnss is not None:
            if hasattr(self.gnss, "run"):
                task("gnss_source", self.gnss.run)
            task("gnss", sampler.gnss_task, self)
        if self.battery is not None or self.obd is not None:
            task("battery", sampler.battery_task, self)
        if self.modem is not None:
            task("signal", sampler.signal_task, self)
        return t

    def stop(self):
        for t in self.tasks:
            t.cancel()
        self.tasks = []

    async def run(self, duration_ms=None):
        """Runs the tasks for duration_ms (None: until a memory-fault reset gives up, see
        reset_reason)."""
        self.start()
        try:
            if duration_ms is None:
                await self._done.wait()
            else:
                await self.sleep(duration_ms)
        finally:
            self.stop()
