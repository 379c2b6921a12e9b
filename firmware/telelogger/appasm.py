# The telelogger's assembly at boot (telelogger/app.py's run calls it, then forgets this module): the
# parts built by telelogger.assembly (imported for it and dropped again), then the cellular publisher
# and the Telelogger, built once assembly is gone (the boot's peak: not both at once). app.assemble
# stays importable (forwarded here).
from gc import collect

from core.errors import drop, forget


async def power_on(board, at, clock, log):
    """A cold plug-in or a battery disconnect leaves the module off: press its power key (GPIO27 on
    the ONE+) until it answers AT, as the official firmware does at every start. A module that
    already answers is left alone. Failure is logged, not fatal: records are stored meanwhile and
    the publisher's recovery tries again. modem.power is dropped again (standby imports it when
    it needs it). A coroutine of its own: its finished frame, not assemble()'s, held ModemPower, so
    modem.power's code is freed as soon as it is dropped rather than kept through the boot."""
    from modem.power import ModemPower

    try:
        pw = ModemPower(board.modem_power_pin(), at, clock, log=log)
        ok = await pw.ensure_on()
        print("modem: %s%s" % ("" if ok else "power on failed: ", pw.reason))
    except MemoryError:
        raise
    except Exception as e:  # BoardError (key not wired) and the like: keep running, say why
        print("modem: power on failed: %s" % e)
    finally:
        forget("modem.power")  # (not drop: no copy of sys.modules in a boot's tight heap)


async def assemble(board, cfg, clock=None, store_root="/queue", log=None):
    """-> (telelogger, at): the Telelogger (not started) and the modem's ATEngine (started;
    None when nothing uses the modem: WiFi transport without modem GNSS). Stop `at` after the
    telelogger. The assembly code is dropped from the heap before the cellular publisher and the
    Telelogger are built (their builds import boot modules of their own: not beside it)."""
    import sys

    if isinstance(cfg, list):  # [cfg] (telelogger.app's run): the caller keeps no reference to it
        cfg = cfg.pop()
    keep = list(sys.modules)
    collect()  # between the boot's steps (telelogger.assembly.assemble says why)
    from telelogger import assembly

    try:
        # the loop's reset callback False: when it gives up on a persistent fault (memory) it has stored what
        # it could and written the reason to reset_path; run() sees t.reset_reason, returns, and the caller
        # resets the board (device_main: machine.reset(); the host runner exits with its reset code)
        at, pub, flat, kw = await assembly.assemble(board, cfg, clock, store_root, log, False)
    finally:
        assembly = None  # (a local: it would keep the module's code alive)
        drop("telelogger.assembly", keep)
    collect()
    from telelogger.loop import Telelogger
    from telelogger.store import Store

    # the long-lived objects first, low in the heap where assembly's code was: the queue, then the Telelogger
    # (loopinit, boot only, loaded once for the boot counter and the constructor, which forgets it again);
    # the modem's power key and the cellular publisher after them (their boot modules come and go above)
    store = Store(*kw.pop("store"))
    from telelogger import loopinit

    kw["boot"] = loopinit.next_boot(store_root + "/boot")
    loopinit = None
    t = Telelogger(cfg, pub, store, **kw)
    store = cfg = None  # the loop keeps what it reads: the config dict leaves the heap before the publisher's build
    for k in "obd intervals standby batch queue gnss commands debug secrets".split():
        flat.pop(k, None)
    collect()
    if at is not None and board.has("modem_power"):
        await power_on(board, at, kw["clock"], log)
        collect()
    if pub is None:  # cellular: the publisher and the modem's power control, handed to the Telelogger
        from net.cellular import from_config
        from telelogger.modemctl import ModemCtl

        clock = kw["clock"]
        t.pub = pub = from_config(at, flat, clock, log=log)
        m = ModemCtl(pub, board, clock, log)
        t.modem = m  # pyright: ignore[reportAttributeAccessIssue] (loop.Telelogger declares no modem attribute)
        if board.has("modem_power"):
            pub.power_on = m.wake  # a module that lost its power is pressed on again by the recovery
    flat = None
    return t, at
