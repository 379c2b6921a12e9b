# The vehicle's own health (issue 14 §3): the VIN, read once per boot (retried at each check while
# the ECU gave none) and carried in the status (t.vin); the stored (mode 03) and pending (mode 07)
# trouble codes, read when the ECU first answers and then every obd.dtc_interval_s, published as a
# "dtc" event on <prefix>/<id>/event whenever they differ from the last event of this boot (the first
# read of a boot is always published). The commands dtc_read / dtc_clear (FORMAT.md "Commands") are
# telelogger/dtccmd.py's, which uses this module's steps. Imported per check by sampler.obd_task and per
# command by dtccmd, and dropped after: the state lives on the telelogger (t.vin, t.dtc), never in this
# module. Few names: each one a module
# interns stays in RAM for good (ARCHITECTURE.md "RAM").
import json

from core.compat import const
from core.errors import forget
from telelogger.tasks import RUN

_VIN_RETRY_MS = const(60000)  # first retry of a VIN the ECU did not give; doubles up to the DTC interval
_UNSENT_MS = const(30000)  # an event that could not be published is tried again this soon
# t.dtc: [next read (loop ms), failed VIN reads, stored, pending, [stored, pending] last published,
#         (utc ms or None, loop ms) of the read]
_DUE = const(0)
_TRIES = const(1)
_STORED = const(2)
_PENDING = const(3)
_SENT = const(4)
_AT = const(5)


def state(t):
    """-> (t.dtc, the obd link or None: none, or obd.enabled is false (t.dtc_ms None))."""
    d = getattr(t, "dtc", None)
    if d is None:
        d = t.dtc = [0, 0, None, None, None, None]
        t.vin = None
    return d, t.obd if t.obd is not None and hasattr(t.obd, "dtcs") and t.dtc_ms is not None else None


async def read(t, d, o, codes=True):
    """The VIN while unknown (a failure is counted, not raised), then (codes) both code lists, and
    the event when they changed. Raises on a link error reading the codes. (Three functions: each
    one's bytecode is one allocation, on a heap that has more room in small pieces.)"""
    if o is None:
        raise ValueError("no OBD link (obd.enabled is false or the board has no co-processor)")
    # obdii/diag.py loaded once for the VIN and both code reads (Obd.vin/dtcs import it per call otherwise: three
    # loads of it in a few seconds, each on the heap until a collection), forgotten after (no local holds it)
    __import__("obdii.diag")
    try:
        if t.vin is None:
            await _vin(t, d, o)
        if codes:
            d[_STORED] = await o.dtcs(3)
            d[_PENDING] = await o.dtcs(7)
            d[_AT] = (t.utc_ms(), t.now())
            d[_DUE] = t.now() + t.dtc_ms
    finally:
        forget("obdii.diag")
    if d[_STORED] is not None:
        await _event(t, d)


async def _vin(t, d, o):
    try:
        t.vin = await o.vin()
    except MemoryError:
        raise
    except Exception as e:  # no answer (ECU off, mode 09 unsupported): retried later
        d[_TRIES] += 1
        t.note("debug", "VIN not read: %s", e)


async def _event(t, d):
    """The "dtc" event when the codes differ from the last one published (and we are connected)."""
    now = [d[_STORED], d[_PENDING]]
    if d[_SENT] == now or not t.pub.connected():
        return
    ev = {"event": "dtc", "id": t.device_id, "ts": d[_AT][0], "boot": t.boot, "uptime_ms": d[_AT][1],
          "vin": t.vin, "stored": now[0], "pending": now[1]}  # FORMAT.md "Events"
    if await send(t, json.dumps(ev).encode()):
        d[_SENT] = now


# (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
async def send(t, ev):
    """Publishes the event's bytes -> whether it went out (a function of its own: each one's bytecode
    is one allocation)."""
    try:
        async with t.lock:
            await t.pub.publish(t.t_status[:-6] + "event", ev, 1)
    except MemoryError:
        raise
    except Exception as e:  # kept: tried again at the next check
        t.note("warn", "dtc event not sent: %s", e)
        return False
    return True


async def check(t):
    """One periodic check (the ECU answers): VIN while unknown, codes when due, an unsent event.
    -> ms until the next check."""
    d, o = state(t)
    iv = t.dtc_ms  # obd.dtc_interval_s (telelogger/loopinit.py; config_set changes it live)
    if t.state != RUN or o is None:
        return iv
    try:
        await read(t, d, o, t.now() >= d[_DUE])
    except MemoryError:
        raise
    except Exception as e:
        t.note("debug", "DTCs not read: %s", e)
        d[_DUE] = t.now() + min(iv, _VIN_RETRY_MS)
    return due_ms(t, d)


def due_ms(t, d):
    """check's result: ms until the codes are due, sooner for a missing VIN or an unsent event (a
    function of its own: each one's bytecode is one allocation)."""
    wait = d[_DUE] - t.now()
    if t.vin is None:
        wait = min(wait, _VIN_RETRY_MS << min(max(d[_TRIES] - 1, 0), 6))
    if d[_STORED] is not None and d[_SENT] != [d[_STORED], d[_PENDING]]:
        wait = min(wait, _UNSENT_MS)
    return max(1000, wait)


def result(t, d):
    """The codes and the VIN as telelogger/dtccmd.py's replies give them."""
    return {"vin": t.vin, "stored": d[_STORED], "pending": d[_PENDING]}
