# The telelogger's assembly at boot (telelogger/app.py's run calls it, then forgets this module): the
# parts built by telelogger.assembly (imported for it and dropped again), then the cellular publisher
# and the Telelogger, built once assembly is gone (the boot's peak: not both at once). app.assemble
# stays importable (forwarded here).
from core.unload import drop


async def assemble(board, cfg, clock=None, store_root="/queue", log=None):
    """-> (telelogger, at): the Telelogger (not started) and the modem's ATEngine (started;
    None when nothing uses the modem: WiFi transport without modem GNSS). Stop `at` after the
    telelogger. The assembly code is dropped from the heap before the cellular publisher and the
    Telelogger are built (their builds import boot modules of their own: not beside it)."""
    import sys

    keep = list(sys.modules)
    from telelogger import assembly

    try:
        # the loop's reset callback False: when it gives up on a persistent fault (memory) it has stored what
        # it could and written the reason to reset_path; run() sees t.reset_reason, returns, and the caller
        # resets the board (device_main: machine.reset(); the host runner exits with its reset code)
        at, pub, flat, kw = await assembly.assemble(board, cfg, clock, store_root, log, False)
    finally:
        assembly = None  # (a local: it would keep the module's code alive)
        drop("telelogger.assembly", keep)
    if pub is None:  # cellular
        from net.cellular import from_config
        from telelogger.modemctl import ModemCtl

        clock = kw["clock"]
        pub = from_config(at, flat, clock, log=log)
        kw["modem"] = m = ModemCtl(pub, board, clock, log)
        if board.has("modem_power"):
            pub.power_on = m.wake  # a module that lost its power is pressed on again by the recovery
    flat = None
    from telelogger.loop import Telelogger

    return Telelogger(cfg, pub, kw.pop("store"), **kw), at
