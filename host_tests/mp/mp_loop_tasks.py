# mp-heap: 256K
# The loop's task set on both runtimes (telelogger/loopinit.py start, telelogger/sampler.py): the
# vehicle checks run in the OBD task and the signal poll with the battery's, on their own timings,
# and a MemoryError in either shared job is a handled fault under the job's name (logged once, with
# the failed allocation's text) that leaves the other job running as it was.
from loopfakes import LogLines, FakeModem, FakeObd, FakeGnss, make, stop

VIN = "WP0ZZZ99ZTS390000"
OOM = "memory allocation failed, allocating 96 bytes"  # MicroPython's text for a failed allocation


class Log(LogLines):
    def oom(self):
        return [s for lv, s in self.lines if lv == "error" and s.startswith("out of memory")]


class Battery:
    def __init__(self):
        self.at = []

    def voltage(self):
        self.at.append(self.clk.t)
        return 13.6


class CountingModem(FakeModem):
    def __init__(self, clk, fails=0):
        FakeModem.__init__(self)
        self.clk = clk
        self.at = []
        self.fails = fails

    async def signal_dbm(self):
        self.at.append(self.clk.t)
        if self.fails:
            self.fails -= 1
            raise MemoryError(OOM)
        self.rssi += 1  # a new value each poll: the loop keeps signal samples only on change
        return -113 + 2 * self.rssi


class VinObd(FakeObd):
    """An OBD link with a VIN and trouble codes whose VIN read runs out of memory `fails` times."""

    def __init__(self, clk, fails=0):
        FakeObd.__init__(self, {0x0C: 1800, 0x0D: 50, 0x05: 88})
        self.clk = clk
        self.fails = fails
        self.vin_at = []

    async def vin(self, tries=2):
        self.vin_at.append(self.clk.t)
        if self.fails:
            self.fails -= 1
            raise MemoryError(OOM)
        return VIN

    async def dtcs(self, mode):
        return []


def _setup(gnss=None):
    t, clk, pub, store, obd = make(gnss=gnss)
    t.log = Log()
    return t, clk, obd


async def test_shared_tasks_keep_their_timings():
    t, clk, obd = _setup(gnss=FakeGnss())
    obd = t.obd = VinObd(clk)
    t.modem = modem = CountingModem(clk)
    t.battery = bat = Battery()
    bat.clk = clk
    t.start()
    # record (+ standby rules, GNSS samples), send, wdt, obd (+ vehicle checks), poll (battery + signal + status)
    assert len(t.tasks) == 5, len(t.tasks)
    await clk.advance(21000)
    await stop(t, clk)
    assert bat.at == list(range(0, 21000, 2000)), bat.at  # intervals.battery_ms 2000, from the start
    assert modem.at == [0, 10000, 20000], modem.at  # intervals.signal_ms 10000, from the start
    assert obd.vin_at == [5000], obd.vin_at  # the first vehicle check 5 s in; the VIN then known
    assert t.vin == VIN and t.dtc[2] == [] and obd.inits == 1
    assert 19 <= obd.reads[0x0C] <= 22, obd.reads  # the PID reads go on around the checks
    assert t.counters["mem_errors"] == 0 and t.log.oom() == []


async def test_vehicle_memory_fault_is_its_own():
    t, clk, obd = _setup()
    obd = t.obd = VinObd(clk, fails=2)
    t.start()
    await clk.advance(20000)
    await stop(t, clk)
    # 5000: fault (back-off 0.5 s), again 5 s later: fault (back-off 1 s), again 5 s later: the VIN
    assert obd.vin_at == [5000, 10500, 16500], obd.vin_at
    assert t.counters["mem_errors"] == 2 and t.vin == VIN and t.reset_reason is None
    lines = t.log.oom()
    assert len(lines) == 1 and lines[0].startswith("out of memory in task vehicle (" + OOM + "; free "), lines
    assert obd.inits == 1  # the OBD part kept its link: no re-init for the check's fault
    assert obd.reads[0x0C] >= 16, obd.reads  # PID reads went on (paused only by the back-offs)


async def test_signal_memory_fault_is_its_own():
    t, clk, obd = _setup()
    t.modem = modem = CountingModem(clk, fails=1)
    t.start()
    await clk.advance(12000)
    await stop(t, clk)
    # the fault at 0, the signal poll again after the 0.5 s back-off, then every 10 s
    assert modem.at == [0, 500, 10500], modem.at
    assert t.counters["mem_errors"] == 1
    lines = t.log.oom()
    assert len(lines) == 1 and lines[0].startswith("out of memory in task signal (" + OOM + "; "), lines
    assert t.last.get(0x24) == obd.volts and t.last.get(0x81) is not None  # battery (ATRV) and signal


async def test_fault_without_a_text_says_so():
    """A MemoryError without a message (MicroPython's preallocated one when even the exception could
    not be allocated; CPython's allocator) is logged as such, once per task."""
    import asyncio

    from telelogger import tasks

    t, clk, obd = _setup()
    n = []

    async def boom():
        n.append(clk.t)
        if len(n) <= 2:
            raise MemoryError()

    asyncio.create_task(tasks.guarded(t, "x", boom))
    await clk.advance(5000)
    await stop(t, clk)
    assert n == [0, 500, 1500] and t.counters["mem_errors"] == 2, n
    lines = t.log.oom()
    assert len(lines) == 1 and lines[0].startswith("out of memory in task x (no allocation size; free "), lines


async def test_status_interval_module_is_dropped_after_each_status():
    """The status message is built by telelogger/statusmsg.py, imported per status interval and
    dropped again; status.status / publish_status / reboot stay importable from telelogger.status."""
    import json
    import sys

    from telelogger import status

    t, clk, obd = _setup()
    sys.modules.pop("telelogger.statusmsg", None)
    t.start()
    await clk.advance(25000)  # intervals.status_ms 10000: two statuses
    assert "telelogger.statusmsg" not in sys.modules
    await stop(t, clk)
    sts = [json.loads(p) for tp, p, q in t.pub.sent if tp == "fm/TEST01/status"]
    assert len(sts) == 2 and sts[-1]["id"] == "TEST01" and sts[-1]["uptime_ms"] == 20000 and sts[-1]["records"] >= 10, sts
    assert t.counters["status"] == 2
    st = status.status(t)
    assert st["voltage"] == obd.volts and st["queue"] == t.store.pending()
    assert "telelogger.statusmsg" not in sys.modules  # forwarded, then dropped again
    from telelogger.status import publish_status, reboot  # noqa: F401 - importable from their old home

    assert getattr(status, "no_such_name", None) is None and "telelogger.statusmsg" not in sys.modules


class FlakyGnss(FakeGnss):
    """A GNSS source whose fix is read through fix() (as gnss.sources expose it), a new update each
    read, and runs out of memory on the reads numbered in `fails`."""

    def __init__(self, clk, fails=()):
        FakeGnss.__init__(self)
        self._fix = self.fix
        self.fix = self.read
        self.clk = clk
        self.at = []
        self.fails = fails

    def read(self):
        self.at.append(self.clk.t)
        if len(self.at) in self.fails:
            raise MemoryError(OOM)
        self._fix.updates += 1
        return self._fix


async def test_record_task_takes_gnss_and_standby_on_their_timings():
    """GNSS samples and the standby rules run in the record task (no task of their own), each on its
    own timing: records every record_ms (1000), the fix every gnss.interval_ms (here 3000)."""
    from loopfakes import cfg

    c = cfg()
    c["gnss"] = {"interval_ms": 3000}
    t, clk, pub, store, obd = make(c)
    t.log = Log()
    t.gnss = gnss = FlakyGnss(clk)
    t.start()
    assert len(t.tasks) == 5  # record, send, wdt, obd, poll (the OBD fake): GNSS and the status have no task
    await clk.advance(10500)
    await stop(t, clk)
    assert gnss.at == [0, 3000, 6000, 9000], gnss.at
    assert t.counters["gnss_fixes"] == 4 and t.last[0x0A] == 52.5
    assert 10 <= t.counters["records"] <= 11, t.counters
    assert t.beats.get("standby") is None and t.counters["mem_errors"] == 0


async def test_gnss_memory_fault_is_its_own():
    t, clk, obd = _setup()
    t.gnss = gnss = FlakyGnss(clk, fails=(2,))
    t.start()
    await clk.advance(6000)
    await stop(t, clk)
    # read 1 at 0, read 2 at 1000 runs out of memory (back-off 0.5 s), read 3 at 1500, then every second
    assert gnss.at == [0, 1000, 1500, 2500, 3500, 4500, 5500], gnss.at
    assert t.counters["mem_errors"] == 1 and t.counters["gnss_fixes"] == 6
    lines = t.log.oom()
    assert len(lines) == 1 and lines[0].startswith("out of memory in task gnss (" + OOM + "; free "), lines
    assert t.counters["records"] >= 5  # the records went on (paused only by the back-off)


async def test_status_memory_fault_is_its_own():
    """The status runs in the poll task (on its own timing: the first one interval in, then every
    status_ms after the last); a MemoryError in it is a handled fault under its name that leaves the
    battery poll on its timing."""
    t, clk, obd = _setup()
    t.battery = bat = Battery()
    bat.clk = clk
    pub = t.pub
    publish = pub.publish
    at = []

    async def flaky_publish(topic, payload, qos=1):
        if topic.endswith("/status"):
            at.append(clk.t)
            if len(at) == 1:
                raise MemoryError(OOM)
        return await publish(topic, payload, qos)

    pub.publish = flaky_publish
    t.start()
    await clk.advance(21000)
    await stop(t, clk)
    assert at == [10000, 10500, 20500], at  # the fault at 10 s, again after the 0.5 s back-off
    assert t.counters["status"] == 2 and t.counters["mem_errors"] == 1
    lines = t.log.oom()
    assert len(lines) == 1 and lines[0].startswith("out of memory in task status (" + OOM + "; "), lines
    assert bat.at == list(range(0, 21000, 2000)), bat.at  # intervals.battery_ms 2000, unchanged


async def test_a_status_waits_for_the_heavy_job_running():
    """A status interval takes its turn (tasks.turn) like the vehicle check, the OBD start and the connect: with
    another job holding t.rare its message is not built beside that job's modules but once the job ends (the
    turn's bound, _TURN_MS, is asyncio's own timer: not on this test's clock)."""
    import json

    t, clk, obd = _setup()
    t.start()
    await clk.advance(5000)
    await t.rare.acquire()  # a heavy job (say a vehicle check) from 5 s to 13 s
    await clk.advance(8000)  # the status due at 10 s waits
    sts = [json.loads(p) for tp, p, q in t.pub.sent if tp == "fm/TEST01/status"]
    assert sts == [] and t.counters["status"] == 0, sts
    t.rare.release()
    await clk.advance(100)
    sts = [json.loads(p) for tp, p, q in t.pub.sent if tp == "fm/TEST01/status"]
    assert len(sts) == 1 and 13000 <= sts[0]["uptime_ms"] <= 13100 and not t.rare.locked(), sts
    await clk.advance(10000)
    assert t.counters["status"] == 2  # the next one on time again
    await stop(t, clk)


async def test_no_status_module_while_there_is_nothing_to_publish():
    """While the publisher is down (an outage, the bring-up at boot) a status interval imports nothing:
    statusmsg.tick runs only with a status to publish or a build on trial past its deadline."""
    import sys

    ticks = []

    class FakeStatusmsg:  # stands in for telelogger.statusmsg (the poll task imports it per interval)
        @staticmethod
        async def tick(t, first):
            ticks.append(t.now())
            return False

    t, clk, obd = _setup()
    t.pub.up = False
    saved = sys.modules.pop("telelogger.statusmsg", None)
    try:
        t.start()
        for _ in range(3):
            sys.modules["telelogger.statusmsg"] = FakeStatusmsg  # (each tick forgets it again)
            await clk.advance(10000)
        assert ticks == [], ticks  # statuses due at 10 s, 20 s, 30 s: not connected, none imported
        t.ota_trial_ms = 35000  # a build on trial, not healthy by 35 s: the tick must run (it reboots)
        sys.modules["telelogger.statusmsg"] = FakeStatusmsg
        await clk.advance(10000)
        assert ticks == [40000], ticks
        t.ota_trial_ms = None
        t.pub.up = True  # connected again: statuses
        sys.modules["telelogger.statusmsg"] = FakeStatusmsg
        await clk.advance(10000)
        assert len(ticks) == 2, ticks
        await stop(t, clk)
    finally:
        sys.modules.pop("telelogger.statusmsg", None)
        if saved is not None:
            sys.modules["telelogger.statusmsg"] = saved
