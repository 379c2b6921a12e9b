# The telelogger: asyncio tasks that sample the vehicle (sampler.py: OBD PIDs on per-PID
# intervals, GNSS, battery, signal), build records, append them to the flash store, and a sender
# that drains the store oldest-first over the publisher, acking only after the broker's PUBACK.
# Nothing is published directly: every sample goes through the store first, so a network
# outage or a reset loses nothing that was appended (official firmware issues #69/#185).
# status.py: status, remote commands, watchdog; standby.py: engine-off sleep.
import asyncio

from core.compat import Clock
from net.publisher import backoff_ms, jitter_pick

# Record less often while parked (official DATA_INTERVAL_TABLE {1000, 2000, 5000} ms over
# STATIONARY_TIME_TABLE {10, 60} s): (stationary ms, record interval multiplier), longest first.
STATIONARY_TIERS = ((60000, 5), (10000, 2))

# Records kept in RAM while the flash refuses writes (full): beyond this the oldest is dropped, counted.
UNSAVED_MAX = 16

RUN = "run"
FLUSH = "flush"
STANDBY = "standby"


def isawait(r):
    """True when `r` is a coroutine/generator that must be awaited (both runtimes)."""
    return r is not None and hasattr(r, "send")


async def acall(fn, *args):
    r = fn(*args)
    if isawait(r):
        r = await r
    return r


def _g(d, key, default):
    v = d.get(key) if d else None
    return default if v is None else v


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


class Telelogger:
    """cfg: the validated config dict (telelogger.config). publisher: net.publisher.Publisher.
    store: telelogger.store.Store. obd: obdii Obd (init, read_pid, battery_voltage, supported).
    gnss: a source with a `fix` (gnss.nmea.Fix). modem: optional, for signal (signal_dbm() or
    csq()), network time (utc_ms()) and power_off()/power_on(). battery: optional object with
    voltage() (ADC) or a callable; else obd.battery_voltage() (ATRV). clock: core.compat.Clock
    (fake in tests). wdt: object with feed(). board: optional light_sleep(ms) (standby), reset().
    codec: the encode module (default telelogger.encode); commands: a CommandHandler (default
    built from cfg['hmac_key']). boot: this boot's number (next_boot()), so records stamped
    before UTC was known are corrected only with this boot's offset."""

    def __init__(self, cfg, publisher, store, obd=None, gnss=None, modem=None, battery=None, clock=None,
                 wdt=None, board=None, codec=None, commands=None, device_id=None, log=None, boot=0,
                 cmd_counter_path=None):
        from telelogger.standby import Standby

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
        self.device_id = device_id or _g(cfg, "device_id", "DEVICE")
        base = "%s/%s/" % (_g(cfg, "topic_prefix", "freematics"), self.device_id)
        self.t_data = base + "data"
        self.t_status = base + "status"
        self.t_cmd = base + "cmd"
        self.t_reply = base + "reply"
        self.encoding = _g(cfg, "encoding", "compact")
        b = _g(cfg, "batch", {})
        self.batch_max = int(_g(b, "max_records", 20))
        self.batch_age_ms = int(_g(b, "max_age_ms", 5000))
        self.payload_max = int(_g(b, "max_bytes", 8192))
        iv = _g(cfg, "intervals", {})
        self.battery_ms = int(_g(iv, "battery_ms", 5000))
        self.signal_ms = int(_g(iv, "signal_ms", 30000))
        self.status_ms = int(_g(iv, "status_ms", 30000))
        self.gnss_ms = int(_g(_g(cfg, "gnss", {}), "interval_ms", 1000))  # config: gnss.interval_ms
        self.backoff_min_ms = int(_g(iv, "reconnect_min_ms", 1000))
        self.backoff_max_ms = int(_g(iv, "reconnect_max_ms", 60000))
        self.pick = jitter_pick  # backoff jitter source (tests may make it deterministic)
        self.wdt_ms = int(_g(iv, "wdt_feed_ms", 1000))
        o = _g(cfg, "obd", {})
        self.obd_enabled = bool(_g(o, "enabled", True)) and obd is not None
        pids = _g(o, "pids", {"0D": 1000, "0C": 1000, "11": 1000, "04": 1000})
        # [pid, interval_ms, due_ms, consecutive_errors, reads, errors]
        self.pids = [[int(h, 16), int(pids[h]), 0, 0, 0, 0] for h in sorted(pids)]
        self.record_ms = int(_g(iv, "record_ms", min([p[1] for p in self.pids] or [1000])))
        sb = _g(cfg, "standby", {})
        self.flush_ms = int(_g(sb, "flush_s", 30) * 1000)
        self._mono = 0
        self._last_ticks = self.clock.ticks_ms()
        self.standby = Standby(sb, 0)
        self.state = RUN
        self.utc_offset_ms = None  # utc_ms - mono_ms, once GNSS or network time is known
        self.pending = {}  # key -> value for the record being built
        self.unsaved = []  # encoded records a failed flash write left in RAM, oldest first
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
        key = _g(_g(cfg, "secrets", {}), "hmac_key", None) or _g(cfg, "hmac_key", None)
        if commands is None and key and _g(_g(cfg, "commands", {}), "enabled", True):
            from telelogger.commands import CommandHandler
            from telelogger.status import handlers

            c = _g(cfg, "commands", {})
            self.commands = CommandHandler(key, self.clock, handlers(self), utc_ms=self.utc_ms,
                                           window_s=_g(c, "window_s", 300), nonces=_g(c, "nonces", 32),
                                           counter_path=cmd_counter_path)
        self.counters = {
            "records": 0, "samples": 0, "obd_reads": 0, "obd_errors": 0, "obd_inits": 0, "gnss_fixes": 0,
            "batches": 0, "sent": 0, "send_errors": 0, "connects": 0, "connect_errors": 0, "reconnects": 0,
            "acked_seq": None, "last_seq": None, "last_bytes": 0, "standby": 0, "wakes": 0, "heartbeats": 0,
            "cmds": 0, "status": 0, "wdt_feeds": 0, "store_errors": 0, "unsaved_dropped": 0,
        }

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
            if p[0] == pid:
                p[1] = ms
                p[2] = self.now()
                return
        self.pids.append([pid, ms, self.now(), 0, 0, 0])

    # ---- records ----
    def build_record(self):
        """Turn the samples gathered since the last record into one stored record -> seq of the last
        record stored. A failed flash write (full, I/O error) keeps the record in RAM (up to UNSAVED_MAX,
        oldest first out, counted in counters['unsaved_dropped']) and re-raises; the next call stores
        the kept records first, in order."""
        if self.pending:
            samples = sorted(self.pending.items())
            self.pending = {}
            now = self.now()
            if self.utc_offset_ms is not None:
                rec = self.codec.encode_record(now + self.utc_offset_ms, True, samples)
            else:
                rec = self.codec.encode_record(now, False, samples, self.boot)
            self.unsaved.append(rec)
        seq = None
        u = self.unsaved
        while u:
            try:
                seq = self.store.append(u[0])
            except Exception:
                self.counters["store_errors"] += 1
                while len(u) > UNSAVED_MAX:
                    u.pop(0)
                    self.counters["unsaved_dropped"] += 1
                raise
            u.pop(0)
            self.counters["records"] += 1
            self.counters["last_seq"] = seq
        return seq

    async def record_task(self):
        while True:
            self.beat("record")
            if self.state == RUN:
                try:
                    self.build_record()
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

        c = asyncio.create_task
        t = self.tasks
        t.append(c(self.record_task()))
        t.append(c(self.sender_task()))
        t.append(c(status.status_task(self)))
        t.append(c(status.cmd_task(self)))
        t.append(c(status.wdt_task(self)))
        t.append(c(standby.standby_task(self)))
        if self.obd_enabled:
            t.append(c(sampler.obd_task(self)))
        if self.gnss is not None:
            if hasattr(self.gnss, "run"):
                t.append(c(self.gnss.run()))
            t.append(c(sampler.gnss_task(self)))
        if self.battery is not None or self.obd is not None:
            t.append(c(sampler.battery_task(self)))
        if self.modem is not None:
            t.append(c(sampler.signal_task(self)))
        return t

    def stop(self):
        for t in self.tasks:
            t.cancel()
        self.tasks = []

    async def run(self, duration_ms=None):
        self.start()
        try:
            while duration_ms is None:
                await self.sleep(3600000)
            await self.sleep(duration_ms)
        finally:
            self.stop()
