# mp-heap: 1024K
# config_set's file write on LittleFS over a NOR-flash block device with the ESP32's geometry
# (host_tests/mp/lfsflash.py): a power cut at every write of the update leaves the old config.json
# or the new one, whole, never none and never a torn one (the next boot's config.load reads it).
# LittleFS is a MicroPython vfs: on CPython these skip.
import json

from mptest import Skip
from telelogger import cfgcmd

try:
    import vfs
except ImportError:
    vfs = None

MNT = "/lfscfg"
PATH = MNT + "/config.json"
OLD = {"device_id": "CAR1", "broker": {"host": "mqtt.my-fleet.net"}, "intervals": {"status_ms": 300000}}
NEW = {"device_id": "CAR1", "broker": {"host": "mqtt.my-fleet.net"},
       "intervals": {"status_ms": 60000, "battery_ms": 5000}, "obd": {"pids": {"0C": 1000, "0D": 2000}}}


def _lf():
    if vfs is None or not hasattr(vfs, "VfsLfs2"):
        raise Skip("design: LittleFS is a MicroPython vfs")
    import lfsflash

    return lfsflash


def _read():
    with open(PATH) as f:
        return json.loads(f.read())


def _update(L, cut):
    """Old file on flash, then cfgcmd's write of the new one with the power cut at write `cut`
    (0: none) -> (flash image, writes the update took, whether _write returned)."""
    dev = L.Flash()
    L.Flash.mkfs(dev)
    dev.mount(MNT)
    try:
        with open(PATH, "w") as f:
            f.write(json.dumps(OLD))
        w0 = dev.writes
        if cut:
            dev.cut_at = w0 + cut
        done = True
        try:
            cfgcmd._write(PATH, json.dumps(NEW))
        except OSError:
            done = False
        return dev.image(), dev.writes - w0, done
    finally:
        dev.umount()


def test_config_file_update_survives_a_power_cut_at_every_write():
    L = _lf()
    _, total, done = _update(L, 0)
    assert done and total >= 2, total
    seen = set()
    for cut in range(1, total + 1):
        image, _, done = _update(L, cut)
        again = L.Flash(base=image)
        again.mount(MNT)
        try:
            got = _read()
        finally:
            again.umount()
        assert got in (OLD, NEW), (cut, got)  # whole, old or new
        if done:
            assert got == NEW, cut  # _write returned: the new file is there
        seen.add("new" if got == NEW else "old")
    assert "old" in seen  # a cut early enough keeps the old file
