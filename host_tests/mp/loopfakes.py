# Fakes shared by the telelogger loop tests (mp_loop*.py), on both runtimes: a virtual clock,
# an in-memory store, a transparent JSON codec, fake OBD/GNSS/modem, a gated publisher.
import asyncio
import json

from fakepub import FakePublisher

from telelogger import sampler, standby, status  # noqa: F401 - loaded early, while the heap is unfragmented
from telelogger.config import validate
from telelogger.loop import Telelogger


class FakeClock:
    """Virtual milliseconds: sleep_ms parks the task until advance() moves time past its wake."""

    def __init__(self):
        self.t = 0
        self._sl = []

    def ticks_ms(self):
        return self.t

    def diff(self, a, b):
        return a - b

    def since(self, t0):
        return self.t - t0

    async def sleep_ms(self, ms):
        ev = asyncio.Event()
        self._sl.append((self.t + max(0, int(ms)), ev))
        await ev.wait()

    async def settle(self):
        for _ in range(40):
            await asyncio.sleep(0)

    async def advance(self, ms):
        end = self.t + ms
        while True:
            await self.settle()
            if not self._sl:
                self.t = end
                return
            wake = min(s[0] for s in self._sl)
            if wake > end:
                self.t = end
                await self.settle()
                return
            self.t = wake
            keep = []
            for s in self._sl:
                if s[0] <= wake:
                    s[1].set()
                else:
                    keep.append(s)
            self._sl = keep


async def stop(t, clk):
    """Stop the loop and let the cancelled tasks finish (MicroPython keeps them queued across
    asyncio.run calls otherwise, holding the old telelogger in memory)."""
    t.stop()
    for _ in range(3):
        await clk.settle()
    clk._sl = []


class LogLines:
    """A core.log-shaped logger keeping (level, text) lines (the loop's notes)."""

    def __init__(self):
        self.lines = []

    def _add(self, level, fmt, args):
        self.lines.append((level, fmt % args))

    def info(self, fmt, *a):
        self._add("info", fmt, a)

    def warn(self, fmt, *a):
        self._add("warn", fmt, a)

    def error(self, fmt, *a):
        self._add("error", fmt, a)

    def debug(self, fmt, *a):
        self._add("debug", fmt, a)


class MemStore:
    """The store in RAM; max_records (None: unbounded) drops the oldest, as the flash store does
    when full (long tests with a stuck sender would otherwise fill the test heap)."""

    def __init__(self, max_records=None):
        self.recs = []
        self.seq = 0
        self.dropped = 0
        self.max_records = max_records
        self.syncs = 0

    def sync(self):
        self.syncs += 1

    def append(self, rec, sync=True):
        self.seq += 1
        self.syncs += 1 if sync else 0
        self.recs.append((self.seq, bytes(rec)))
        if self.max_records is not None and len(self.recs) > self.max_records:
            self.recs.pop(0)
            self.dropped += 1
        return self.seq

    def peek(self, n):
        return self.recs[:n]

    def ack(self, upto):
        self.recs = [r for r in self.recs if r[0] > upto]

    def pending(self):
        return len(self.recs)


class Codec:
    """Transparent codec: records and batches are JSON so tests can read them back."""

    @staticmethod
    def encode_record(ts_ms, utc, samples, boot=0):
        return json.dumps([ts_ms, utc, [[k, v] for k, v in samples]]).encode()

    @staticmethod
    def encode_batch(device_id, entries, fmt, utc_offset_ms=None, boot=None):
        return json.dumps({"id": device_id, "off": utc_offset_ms,
                           "e": [[s, json.loads(r)] for s, r in entries]}).encode()


class FakeObd:
    def __init__(self, values, supported=None, failing=()):
        self.values = values
        self.supported = supported
        self.failing = failing
        self.reads = {}
        self.inits = 0
        self.volts = 14.1
        self.power = []  # co-processor low-power mode entries/exits, in order

    async def init(self):
        self.inits += 1

    async def low_power(self):
        self.power.append("low")

    async def wake(self):
        self.power.append("wake")

    async def read_pid(self, pid):
        self.reads[pid] = self.reads.get(pid, 0) + 1
        if pid in self.failing:
            raise OSError("NO DATA")
        return self.values.get(pid)

    async def battery_voltage(self):
        return self.volts


class Fix:
    """Same attributes as gnss.nmea.Fix."""

    def __init__(self):
        self.valid = True
        self.updates = 0
        self.lat = 52.5
        self.lon = 13.4
        self.alt = 40.0
        self.speed_kmh = 0.0
        self.course = 90.0
        self.sats = 9
        self.hdop = 0.9
        self.year = self.month = self.day = self.hour = self.minute = self.second = self.ms = None
        self.epoch = None


class FakeGnss:
    def __init__(self):
        self.fix = Fix()
        self.off = 0

    def power_off(self):
        self.off += 1


class FakeModem:
    def __init__(self):
        self.rssi = 20
        self.on = True
        self.offs = 0
        self.ons = 0

    async def signal_dbm(self):
        return -113 + 2 * self.rssi  # 3GPP TS 27.007 +CSQ rssi -> dBm, as modem.sim7600 converts it

    async def power_off(self):
        self.on = False
        self.offs += 1

    async def power_on(self):
        self.on = True
        self.ons += 1


def cfg(**over):
    c = {
        "device_id": "TEST01", "topic_prefix": "fm", "encoding": "json",
        "obd": {"enabled": True, "pids": {"0C": 1000, "0D": 1000, "05": 3000}},
        "broker": {"host": "broker.test"},
        "gnss": {"interval_ms": 1000},
        "batch": {"max_records": 5, "max_age_ms": 2000},
        "intervals": {"battery_ms": 2000, "signal_ms": 10000, "status_ms": 10000, "reconnect_max_ms": 8000},
        "standby": {"voltage_off": 11.8, "voltage_wake": 13.3, "stationary_s": 60, "heartbeat_s": 0},
    }
    for k in over:
        c[k] = over[k]
    return c


def validated(c=None):
    """cfg() (or c) merged with the defaults and checked, as the app hands it to the loop."""
    return validate(c or cfg(), False)


def make(c=None, pub=None, obd=None, gnss=None, modem=None, commands=None):
    clk = FakeClock()
    pub = pub or FakePublisher()
    store = MemStore()
    obd = obd if obd is not None else FakeObd({0x0C: 1800, 0x0D: 50, 0x05: 88})
    t = Telelogger(validated(c), pub, store, obd=obd, gnss=gnss, modem=modem, clock=clk, codec=Codec,
                   commands=commands)
    return t, clk, pub, store, obd


def sent_seqs(pub, topic="fm/TEST01/data"):
    out = []
    for tp, payload, qos in pub.sent:
        if tp == topic:
            assert qos == 1
            for e in json.loads(payload)["e"]:
                out.append(e[0])
    return out


class GatePublisher(FakePublisher):
    """publish() waits for a gate: models a PUBACK that has not come back yet."""

    def __init__(self):
        FakePublisher.__init__(self)
        self.gate = asyncio.Event()
        self.waiting = 0

    async def publish(self, topic, payload, qos=1):
        self.waiting += 1
        await self.gate.wait()
        self.waiting -= 1
        await FakePublisher.publish(self, topic, payload, qos)


class EchoCommands:
    """Stands in for commands.CommandHandler: payload is {"cmd":..., "args":...} without HMAC."""

    def __init__(self, handlers):
        self.h = handlers

    async def handle(self, payload):
        m = json.loads(payload)
        try:
            r = await self.h[m["cmd"]](m.get("args"))
            return json.dumps({"ok": True, "result": r}).encode()
        except Exception as e:
            return json.dumps({"ok": False, "error": str(e)}).encode()


class Wdt:
    def __init__(self):
        self.n = 0

    def feed(self):
        self.n += 1
