# mp-heap: 1024K
# The command counter file on LittleFS over a NOR-flash block device with the ESP32's geometry
# (host_tests/mp/lfsflash.py): a power cut at every write of its update leaves the old counter or
# the new one, never none and never a corrupt one, and a command that ran always finds its n
# stored after the cut (issue 11 §1: freshness survives reboots). LittleFS is a MicroPython vfs:
# on CPython these skip.
import asyncio

import cmdsigner as S
from mptest import Skip
from telelogger.commands import CommandHandler

try:
    import vfs
except ImportError:
    vfs = None

KEY = "lfs-counter-key-0123456789abcdef"
DEV = "LFS01"
NOW_MS = 1700000000000
MNT = "/lfsc"
PATH = MNT + "/cmd_n"


def _lf():
    if vfs is None or not hasattr(vfs, "VfsLfs2"):
        raise Skip("design: LittleFS is a MicroPython vfs")
    import lfsflash

    return lfsflash


def _handler(calls):
    async def ping(args):
        calls.append(args)
        return {}

    return CommandHandler(KEY, None, {"ping": ping}, utc_ms=lambda: NOW_MS, device_id=DEV, counter_path=PATH)


def _send(h, n):
    p = S.sign(KEY, {"cmd": "ping", "n": n, "ts": NOW_MS // 1000}, DEV)
    return S.verify_reply(KEY, asyncio.run(h.handle(p)), DEV)


def _run(L, first, cut):
    """A device that accepted n=`first` (None: never a command) accepts n=7 with the power cut at
    write `cut` of that (0: no cut) -> (flash image, whether the command ran, writes it took)."""
    dev = L.Flash()
    L.Flash.mkfs(dev)
    dev.mount(MNT)
    try:
        calls = []
        h = _handler(calls)
        if first is not None:
            assert _send(h, first)["ok"]
        w0 = dev.writes
        if cut:
            dev.cut_at = w0 + cut
        r = _send(h, 7)
        ran = len(calls) == (2 if first is not None else 1)
        assert ran is r["ok"], r
        if not ran:
            assert "cannot store the command counter" in r["error"], r
        writes = dev.writes - w0
    finally:
        dev.umount()
    return dev.image(), ran, writes


def _after_cut(L, image):
    again = L.Flash(base=image)
    again.mount(MNT)
    try:
        h = _handler([])
        return h.last_n, h.stats["counter_error"]
    finally:
        again.umount()


def test_counter_update_survives_a_power_cut_at_every_write():
    L = _lf()
    for first in (5, None):
        _, ran, total = _run(L, first, 0)
        assert ran and total >= 2, total  # the update programs the flash (tmp file, rename)
        for cut in range(1, total + 1):
            image, ran, _ = _run(L, first, cut)
            last, err = _after_cut(L, image)
            assert err is None, (first, cut, err)  # never unreadable: the old file or the new one
            assert last in (first or 0, 7), (first, cut, last)
            if ran:
                assert last == 7, (first, cut)  # it ran only once n was on flash
