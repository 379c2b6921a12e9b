# mp-heap: 2048K
# OTA update on LittleFS over a NOR-flash block device with the ESP32's geometry
# (host_tests/mp/lfsflash.py): a power cut at every flash write of the staging, of the install
# (ota_commit: ok marker, boots, the pointer switch) and of the boot's trial bookkeeping and
# rollback. After each cut the board boots a complete build (the old one or the new one, never a
# half-written slot: every file of the chosen slot matches its manifest), and the update then
# resumes from what is staged and finishes. LittleFS is a MicroPython vfs: on CPython these skip.
import asyncio
import json
import os

import mp_ota_kit as K
from mptest import Skip
from telelogger import ota, otaboot, otacmd

try:
    import vfs
except ImportError:
    vfs = None

MNT = "/lfso"
ROOT = MNT + "/"


def _lf():
    if vfs is None or not hasattr(vfs, "VfsLfs2"):
        raise Skip("design: LittleFS is a MicroPython vfs")
    import lfsflash

    return lfsflash


def _complete(slot):
    """The slot's ok marker, manifest and every file agree (the deployed tree "-" always does)."""
    if slot == "-":
        return True
    d = ROOT + "ota/" + slot + "/"
    with open(d + "manifest") as f:
        h = json.loads(f.readline())
        for _ in range(h["files"]):
            p, size, sha = json.loads(f.readline())
            assert ota.sha_file(d + p) == sha, (slot, p)
    with open(d + "ok") as f:
        assert f.read().strip() == str(h["version"]), slot
    return h["version"]


def _boot():
    """What main.py does at a boot: the slot it runs, checked complete; -> (slot, version)."""
    s = otaboot.choose(ROOT)
    return s, (_complete(s) if s != "-" else 0)


def _status(t):
    return asyncio.run(otacmd.handle(t, "ota_status", {}))


def _commit(t):
    return asyncio.run(otacmd.handle(t, "ota_commit", {}))


def _begin(t, b):
    return asyncio.run(otacmd.handle(t, "ota_begin", K.begin_args(b)))


def _with(L, image, fn, cut=0):
    """Mount `image` (None: a blank formatted flash), run fn(); a cut at its `cut`-th write (0: none).
    -> (new image, fn's result or the OSError of the cut, writes fn took)."""
    dev = L.Flash(base=image)
    if image is None:
        L.Flash.mkfs(dev)
    dev.mount(MNT)
    try:
        w0 = dev.writes
        if cut:
            dev.cut_at = w0 + cut
        try:
            r = fn()
        except OSError as e:
            assert cut, e
            r = e
        return dev.image(), r, dev.writes - w0
    finally:
        dev.umount()


def _finish(L, image, b):
    """After a cut: boot, resume the update from what is staged, install, boot the new build."""

    def go():
        s0 = _boot()
        t = K.T(ROOT)
        st = _status(t)
        if st["state"] == "idle" and st["installed"] == b["header"]["version"]:
            return s0, "installed"
        if st["state"] == "idle":  # the session record never made it: begin again
            _begin(t, b)
            st = _status(t)
        for _ in range(3):  # the manifest, then what is left: send, ask again
            assert K.send_all(t, b, st["need"]) == [], st
            st = _status(t)
        assert st["state"] == "ready", st
        _commit(t)
        return s0, "resumed"

    image, r, _ = _with(L, image, go)
    assert not isinstance(r, OSError), r
    image, s, _ = _with(L, image, _boot)
    assert s == ("a", b["header"]["version"]), s
    return r


def test_power_cut_at_every_write_of_staging_and_install():
    L = _lf()
    b = K.bundle(2)

    def update():
        t = K.T(ROOT)
        os.mkdir(ROOT + "ota")
        for p, data in b["files"][2:4]:  # the deployed tree has two of the modules: copied, not sent
            d = ROOT
            for part in p.split("/")[:-1]:
                d += part + "/"
                try:
                    os.mkdir(d[:-1])
                except OSError:
                    pass
            with open(ROOT + p, "wb") as f:
                f.write(data)
        _begin(t, b)
        assert K.send_all(t, b, [[0, 0]]) == []
        st = _status(t)
        assert st["reused"] == 2, st
        assert K.send_all(t, b, st["need"]) == []
        return _commit(t)

    _, r, total = _with(L, None, update)
    assert r["installed"] == 2, r
    assert total > 20, total
    seen = {}
    for cut in range(1, total + 1):
        image, r, _ = _with(L, None, update, cut)
        assert isinstance(r, OSError) or cut == total, (cut, r)  # the torn last write raises nothing
        boot, how = _finish(L, image, b)
        assert boot[0] in ("-", "a"), (cut, boot)
        seen[boot[0] + how] = seen.get(boot[0] + how, 0) + 1
    # cuts fell before the switch (the old build boots, the update resumes) and after it
    assert seen.get("-resumed") and seen.get("ainstalled"), seen


def test_power_cut_at_every_write_of_a_second_install_and_its_trial_boots():
    L = _lf()
    b2, b3 = K.bundle(2), K.bundle(3)

    def first():
        t = K.T(ROOT)
        os.mkdir(ROOT + "ota")
        _begin(t, b2)
        assert K.send_all(t, b2) == []
        _commit(t)
        otaboot.choose(ROOT)
        otaboot.mark_healthy(ROOT)

    base, _, _ = _with(L, None, first)

    def stage():
        t = K.T(ROOT)
        _begin(t, b3)
        assert K.send_all(t, b3) == []

    staged, _, _ = _with(L, base, stage)

    def install():
        return _commit(K.T(ROOT))

    _, r, total = _with(L, staged, install)
    assert r["slot"] == "b" and r["previous"] == 2, r
    for cut in range(1, total + 1):
        image, r, _ = _with(L, staged, install, cut)
        image, boot, _ = _with(L, image, _boot)
        assert boot in (("a", 2), ("b", 3)), (cut, boot)  # old or new, each complete
        if boot[0] == "a":  # the switch did not happen: the staged update is still there
            image, r, _ = _with(L, image, install)
            assert r["installed"] == 3, (cut, r)
    # the trial boots and the rollback of version 3, cut at each of their writes
    installed, _, _ = _with(L, staged, install)

    def trial():
        got = [_boot() for _ in range(otaboot.K + 1)]
        return got

    _, got, total = _with(L, installed, trial)
    assert got == [("b", 3)] * otaboot.K + [("a", 2)], got
    for cut in range(1, total + 1):
        image, r, _ = _with(L, installed, trial, cut)
        for _ in range(otaboot.K + 2):  # whatever was counted, a few more boots end on a complete build
            image, boot, _ = _with(L, image, _boot)
            assert boot in (("a", 2), ("b", 3)), (cut, boot)
        assert boot == ("a", 2), (cut, boot)  # never marked healthy: rolled back in the end

        def why():
            with open(ROOT + "ota/failed") as f:
                return f.read()

        _, w, _ = _with(L, image, why)
        assert w.startswith("3 ") and "without a healthy status" in w, (cut, w)


def test_power_cut_during_mark_healthy_keeps_a_bootable_build():
    L = _lf()
    b = K.bundle(2)

    def setup():
        t = K.T(ROOT)
        os.mkdir(ROOT + "ota")
        _begin(t, b)
        K.send_all(t, b)
        _commit(t)
        otaboot.choose(ROOT)

    base, _, _ = _with(L, None, setup)

    def healthy():
        return otaboot.mark_healthy(ROOT)

    _, r, total = _with(L, base, healthy)
    assert r is True and total >= 1
    for cut in range(1, total + 1):
        image, _, _ = _with(L, base, healthy, cut)
        image, boot, _ = _with(L, image, _boot)
        assert boot == ("a", 2), (cut, boot)  # still on trial (counted once more) or healthy


def test_power_cut_while_a_new_update_overwrites_the_previous_builds_slot():
    """Installed: b 3 (healthy), previous a 2. Bundle 4 goes to slot a: the pointer's reference to
    a is cleared before a is touched, so at every cut the board boots b 3, and 4 then installs."""
    L = _lf()
    b2, b3, b4 = K.bundle(2), K.bundle(3), K.bundle(4)

    def setup():
        os.mkdir(ROOT + "ota")
        for b in (b2, b3):
            t = K.T(ROOT)
            _begin(t, b)
            assert K.send_all(t, b) == []
            _commit(t)
            otaboot.choose(ROOT)
            otaboot.mark_healthy(ROOT)
        with open(ROOT + "ota/ptr") as f:
            assert f.read() == "b 3 a 2 0\n"

    base, _, _ = _with(L, None, setup)

    def update():
        t = K.T(ROOT)
        _begin(t, b4)
        assert K.send_all(t, b4, [[0, 0]]) == []
        st = _status(t)
        assert K.send_all(t, b4, st["need"]) == []
        return _commit(t)

    _, r, total = _with(L, base, update)
    assert r == {"installed": 4, "slot": "a", "previous": 3, "reboot": True}, r
    for cut in range(1, total + 1):
        image, r, _ = _with(L, base, update, cut)
        image, boot, _ = _with(L, image, _boot)
        assert boot in (("b", 3), ("a", 4)), (cut, boot)

        def ptr():
            with open(ROOT + "ota/ptr") as f:
                return f.read()

        _, p, _ = _with(L, image, ptr)
        if boot[0] == "b":
            assert p.split()[2] in ("-", "a"), (cut, p)
            if p.split()[2] == "a":  # still the old pointer: slot a untouched so far
                _, v, _ = _with(L, image, lambda: _complete("a"))
                assert v == 2, (cut, v)
