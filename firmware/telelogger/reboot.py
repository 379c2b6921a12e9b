# The reboot of a `reboot` or `ota_commit` command (telelogger/cmdrun.py, after its reply) and of a build on
# trial that did not get healthy in time, and the end of a trial after the first acked status
# (telelogger/statusmsg.py's tick). Imported for one of these through core.errors.lookup and forgotten: a
# build not on trial that takes no reboot command never loads it (nor interns its names).
from telelogger.tasks import acall, unload


async def healthy(t):
    """The build on trial connected and published a status (PUBACK): otaboot.mark_healthy() (imported,
    called, dropped) ends the trial; t.ota_info is read again for the status."""
    from telelogger import otaboot

    root = getattr(t, "ota_root", "/")
    try:
        if otaboot.mark_healthy(root):
            t.note("info", "ota: version %d marked healthy", t.ota_info["ver"] if t.ota_info else 0)
        t.ota_trial_ms = None
        t.ota_info = otaboot.info(root)
    except OSError as e:
        t.note("error", "ota: mark_healthy: %s", e)
    finally:
        otaboot = None
        unload("otaboot")


async def expired(t):
    """A build on trial never healthy by its deadline (t.ota_trial_ms): the reset that rolls it back."""
    t.ota_trial_ms = None
    t.note("error", "ota: build on trial not healthy within %d s: resetting", t.now() // 1000)
    t.reboot_req = True
    await reboot(t)


async def reboot(t):
    """The records of the sync window to flash, disconnect, board reset."""
    t.note("warn", "reboot requested")
    try:
        t.build_record()  # the records of the sync window go to flash first
    except Exception as e:  # flash full: they are lost with the reboot, say so
        t.note("warn", "before reboot: %d records not stored: %s", len(t.unsaved), e)
    try:
        await t.pub.disconnect()
    except Exception:
        pass
    if t.board is not None and hasattr(t.board, "reset"):
        await acall(t.board.reset)
