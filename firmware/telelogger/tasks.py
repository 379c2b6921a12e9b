# What the telelogger's modules share, so none of them imports another for it: the run states, the
# sample keys both the sampler and the status read, calling a function that may be sync or async,
# forgetting a module imported for one job, running a task with MemoryError as a handled fault
# (guarded, fault: below), and the watchdog task (wdt_task).
import gc

from core.compat import const

RUN = "run"  # sampling and sending
FLUSH = "flush"  # entering standby: last record, draining the queue
STANDBY = "standby"  # modem off, polling the battery voltage

# Sample keys of the battery voltage and the signal (the numbers fixed by the architecture contract and
# telelogger/keys.py, which names them; test_loop_e2e checks they agree): telelogger/sampler.py takes
# them, telelogger/statusmsg.py shows their latest values
K_BATTERY = const(0x24)
K_SIGNAL = const(0x81)


def isawait(r):
    """True when `r` is a coroutine/generator that must be awaited (both runtimes)."""
    return r is not None and hasattr(r, "send")


async def acall(fn, *args):
    r = fn(*args)
    if isawait(r):
        r = await r
    return r


# ---- one heavy job at a time
# The jobs that import several rare modules and hold them across awaits (the publisher's connect: its
# recovery, the modem bring-up and registration, the MQTT session; the OBD link's initialisation; the
# vehicle checks; a status interval's message) take turns through t.rare (an asyncio.Lock), so that the heap
# holds one of them at a time, not the sum: at a cold start all three come due in the same seconds. The connect
# comes first (the modem is on and ready: telelogger/loopstart.py starts the sender before the OBD task). The
# OBD link's start, the connect and the status wait at most _TURN_MS for their turn, then go ahead without it (a connect
# held up by a long registration wait does not keep the OBD reads from starting for longer); a vehicle
# check that finds another job running comes back later (telelogger/sampler.py).
_TURN_MS = const(10000)


async def turn(t):
    """Waits (at most _TURN_MS) for t.rare -> True: it holds it (the caller releases it when its job
    ends: t.rare.release()), False: it went ahead without it."""
    from core.compat import TimeoutError, wait_for_ms  # noqa: A004 - asyncio's, as compat has it

    try:
        await wait_for_ms(t.rare.acquire(), _TURN_MS)
        return True
    except TimeoutError:
        return False


def text(n):
    """Text number n of telelogger/texts.py (the resident modules' error and log texts), imported for
    the lookup and forgotten again."""
    from telelogger import texts

    try:
        return texts.TEXTS[n]
    finally:
        texts = None
        unload("texts")


def unload(name):
    """Forgets module telelogger.<name> (imported for one job: validation, a key table, standby)
    so that its heap can be collected: out of sys.modules and off the package."""
    from core.errors import forget

    forget("telelogger" + "." + name)  # (two names: "telelogger." would be a str constant of this module)


# ---- memory faults
# Running out of memory is a handled fault (telelogger/CONFIG.md "Memory faults"): the loop task
# that hit MemoryError is restarted after gc.collect() and a back-off of _MEM_BACKOFF_MS doubling per
# recent fault (at most _MEM_BACKOFF_MAX_MS); _MEM_FAULTS_MAX faults within _MEM_WINDOW_MS give up: the
# reason goes to t.reset_path (read back by the next boot, below) and t.reset_cb(reason) or
# the board's reset() is called (t.reset_cb False: neither, the caller resets when run() returns).
# Nothing here allocates much: it runs when the heap is exhausted,
# which is also why it is resident (an import then could fail). The next boot reads the reason back
# (telelogger/loopinit.py init: t.last_reset, shown once in the status, then the file is removed).
_MEM_FAULTS_MAX = const(5)
_MEM_WINDOW_MS = const(60000)
_MEM_BACKOFF_MS = const(500)
_MEM_BACKOFF_MAX_MS = const(8000)


async def guarded(t, name, fn, arg=None):
    """Runs the task `fn()` (`fn(arg)` when arg is given; fn a coroutine function); a MemoryError
    in it is a handled fault (fault) after which the task starts again."""
    while True:
        try:
            await (fn() if arg is None else fn(arg))
            return
        except MemoryError as e:
            await fault(t, name, e)
            if t.reset_reason is not None:
                return


async def fault(t, name, e=None):
    """Counts, logs once per task (`name`) with the failed allocation (the MemoryError `e`'s text,
    "memory allocation failed, allocating N bytes" on MicroPython), collects, backs off; gives up
    (resets) when faults persist."""
    # the exception's own message object (e.args[0]: no str(e) formatted while the heap is exhausted);
    # a MemoryError without one (MicroPython's preallocated one, CPython's allocator) says so
    e = e.args[0] if e is not None and e.args else "no allocation size"
    gc.collect()
    t.counters["mem_errors"] += 1
    now = t.now()
    r, logged = t._mem  # recent faults' loop ms, task names logged already
    while r and (now - r[0] >= _MEM_WINDOW_MS or len(r) >= _MEM_FAULTS_MAX):
        r.pop(0)
    r.append(now)
    if name not in logged:
        logged.append(name)
        try:
            free = getattr(gc, "mem_free", None)  # MicroPython only
            t.note("error", "out of memory in task %s (%s; free %d bytes): retrying after gc", name, e,
                   free() if free else -1)
        except MemoryError:
            pass
    if len(r) < _MEM_FAULTS_MAX:
        await t.sleep(min(_MEM_BACKOFF_MS << (len(r) - 1), _MEM_BACKOFF_MAX_MS))
        return
    # give up: store what is still in RAM (best effort: the flash queue is durable), write the
    # reason to reset_path for the next boot's status, call the reset callback
    reason = "memory: %d MemoryErrors within %d s, last in task %s (%s)" % (len(r), _MEM_WINDOW_MS // 1000, name, e)
    t.reset_reason = reason
    gc.collect()
    try:
        t.build_record()
    except Exception as e:  # the records stay where they are; flash holds all stored ones
        t.note("warn", "before reset: %d records not stored: %s", len(t.unsaved), e)
    if t.reset_path:
        try:
            with open(t.reset_path, "w") as f:
                f.write(reason + "\n")
        except OSError as e:
            t.note("warn", "cannot write %s: %s", t.reset_path, e)
    t.note("error", "resetting: %s", reason)  # run() returns: it sees t.reset_reason
    fn = t.reset_cb  # False: the caller resets once run() returns (telelogger.app)
    if fn is None and t.board is not None and hasattr(t.board, "reset"):
        fn = t.board.reset
    if fn:
        r = fn(reason) if t.reset_cb is not None else fn()
        if isawait(r):
            await r


# A task silent for longer than this stops the watchdog feeding (the board's WDT then resets): the
# record task (which also runs the standby rules and the GNSS samples) 120 s, the sender 900 s (it may legitimately sit in
# CellularPublisher.connect()'s bounded retries for minutes), any other task 300 s (wdt_task).
_T_TASK_SILENT = const(20)  # the log text (telelogger/texts.py, looked up when written: Telelogger.note)


# ---- the watchdog (here, not in a module of its own: a resident module costs ~150 bytes by itself)
async def wdt_task(t):
    while True:
        now = t.now()
        fresh = True
        if t.state == RUN:
            for name in t.beats:
                if now - t.beats[name] > (900000 if name == "send" else 120000 if name == "record" else 300000):  # the limits above
                    fresh = False
                    t.note("error", _T_TASK_SILENT, name, now - t.beats[name])
        if fresh and t.wdt is not None:
            t.wdt.feed()
            t.counters["wdt_feeds"] += 1
        await t.sleep(t.wdt_ms)
