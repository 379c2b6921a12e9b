# mp-heap: 128K
# OTA update, device side (telelogger/ota.py, otaman.py, otaboot.py; telelogger/FORMAT.md "OTA updates"): verify,
# stage, resume, install A/B, trial and rollback, and every refusal with its reason and nothing
# changed. Bundles come from mp_ota_kit (written from FORMAT.md "OTA updates"; test_ota_bundle.py checks it against
# scripts/ota_bundle.py).
import asyncio
import json

import mp_ota_kit as K
from mptest import raises
from telelogger import ota, otaboot, otacmd


def _dev():
    return K.tmpdir()


def _read(p):
    with open(p) as f:
        return f.read()


def _begin(t, b, **over):
    a = K.begin_args(b)
    a.update(over)
    return asyncio.run(otacmd.handle(t, "ota_begin", a))


def _install(root, version, **kw):
    """A device at `root` gets bundle `version` staged and committed; -> (t, bundle, commit result)."""
    t = K.T(root)
    b = K.bundle(version, **kw)
    _begin(t, b)
    assert K.send_all(t, b) == []
    st = ota.status(t)
    assert st["state"] == "ready" and st["need"] == [], st
    return t, b, asyncio.run(otacmd.handle(t, "ota_commit", {}))


def _unchanged_after(root, fn):
    before = K.snapshot(root)
    e = raises(ValueError, fn)
    assert K.snapshot(root) == before, "a refusal changed the flash"
    return str(e)


def test_update_stages_verifies_and_switches_with_one_pointer():
    root = _dev()
    try:
        t, b, r = _install(root, 2)
        assert r == {"installed": 2, "slot": "a", "previous": 0, "reboot": True}, r
        assert t.reboot_req
        assert _read(root + "ota/ptr") == "a 2 - 0 1\n"
        assert _read(root + "ota/a/ok") == "2\n"
        for p, data in b["files"]:
            with open(root + "ota/a/" + p, "rb") as f:
                assert f.read() == data, p
        assert ota.status(t)["state"] == "idle"
        # the next boot runs slot a on trial; once healthy it stays
        assert otaboot.choose(root) == "a"
        assert _read(root + "ota/boots") == "1\n"
        assert otaboot.mark_healthy(root) is True
        assert _read(root + "ota/ptr") == "a 2 - 0 0\n"
        assert otaboot.mark_healthy(root) is False
        # version 3 goes to slot b; a stays as the previous build
        _, _, r = _install(root, 3)
        assert r["slot"] == "b" and r["previous"] == 2
    finally:
        K.rmtree(root)


def test_tampered_chunk_is_refused_and_nothing_written():
    root = _dev()
    try:
        t = K.T(root)
        b = K.bundle(2)
        _begin(t, b)
        m = bytearray(K.msg(b, 0, 0))
        m[20] ^= 1
        e = ota.chunk(t, bytes(m))
        assert "bad mac" in e and e.startswith("chunk 0/0"), e
        assert ota.status(t)["need"][0] == [0, 0] and ota.status(t)["bytes"] == 0
        assert ota.status(t)["error"] == e and ota.status(t)["refused"] == 1
        assert "not an OTA chunk" in ota.chunk(t, b"hello")
        assert "header says" in ota.chunk(t, K.msg(b, 0, 0)[:-1])
        # a chunk signed for another device
        assert "bad mac" in ota.chunk(t, K.msg(b, 0, 0, dev="OTHER", m=K.mac(b)))
        assert K.send_all(t, b) == []
    finally:
        K.rmtree(root)


def test_wrong_signature_is_refused_and_nothing_installed():
    root = _dev()
    try:
        t = K.T(root)
        b = K.bundle(2)
        bad = K.mac(b, key="another-key-of-another-fleet-000")
        _begin(t, b, mac=bad)
        errs = [ota.chunk(t, p) for p in [K.msg(b, 0, k, m=bad) for k in range(4)]]
        errs = [e for e in errs if e]
        assert errs and "manifest refused: bad mac" in errs[0], errs
        assert ota.status(t)["state"] == "idle"  # the session is gone with its staged files
        assert K.snapshot(root) == {}, K.snapshot(root)
        assert "commit" not in str(raises(ValueError, lambda: asyncio.run(otacmd.handle(t, "ota_commit", {}))))
    finally:
        K.rmtree(root)


def test_old_version_is_refused_unless_a_signed_rollback():
    root = _dev()
    try:
        t, _, _ = _install(root, 5)
        otaboot.choose(root)
        otaboot.mark_healthy(root)
        for v in (5, 4):
            b = K.bundle(v)
            e = _unchanged_after(root, lambda b=b: _begin(t, b))
            assert e == "version %d not newer than installed 5 (a downgrade needs a signed rollback)" % v, e
        _, _, r = _install(root, 4, rollback=1)
        assert r["installed"] == 4
    finally:
        K.rmtree(root)


def test_rollback_flag_must_match_the_signed_manifest():
    root = _dev()
    try:
        t = K.T(root)
        b = K.bundle(2)  # manifest says rollback 0
        _begin(t, b, rollback=1)
        errs = K.send_all(t, b)
        assert errs and "header.rollback 0 differs from ota_begin's 1" in errs[0], errs
    finally:
        K.rmtree(root)


def test_too_large_bundle_is_refused_and_nothing_changed():
    root = _dev()
    saved = otacmd._free
    try:
        t, _, _ = _install(root, 2)
        otaboot.mark_healthy(root)
        otacmd._free = lambda d: (4096, 60000)
        b = K.bundle(3)
        e = _unchanged_after(root, lambda: _begin(t, b))
        assert e.startswith("bundle needs ") and e.endswith(" bytes of flash, 60000 free"), e
    finally:
        otacmd._free = saved
        K.rmtree(root)


def test_bad_arguments_and_trial_are_refused():
    root = _dev()
    try:
        t = K.T(root)
        b = K.bundle(2)
        assert "args.mac" in _unchanged_after(root, lambda: _begin(t, b, mac="XYZ"))
        assert "args.chunk" in _unchanged_after(root, lambda: _begin(t, b, chunk=4000))
        assert "args.version" in _unchanged_after(root, lambda: _begin(t, b, version=True))
        _install(root, 2)
        e = _unchanged_after(root, lambda: _begin(t, K.bundle(3)))
        assert e == "version 2 is on trial: update again once it is marked healthy", e
        assert "unknown OTA command" in str(raises(ValueError, lambda: asyncio.run(otacmd.handle(t, "ota_x", {}))))
    finally:
        K.rmtree(root)


def test_manifest_content_is_checked():
    root = _dev()
    try:
        for fl, want in ((([("../evil.mpy", b"x")]), "file 1: expected [path"),
                         (([("a/x.py", b"x")]), "file 1: expected [path"),
                         (([("b.mpy", b"1"), ("a.mpy", b"2")]), "paths must be sorted"),
                         (None, "needs config schema 2, the running build has 1")):
            t = K.T(root)
            b = K.bundle(2, fl=fl, min_schema=2 if fl is None else 1)
            if fl is not None:  # the kit sorts nothing: keep the order given
                b["files"] = fl
            _begin(t, b)
            errs = K.send_all(t, b)
            assert errs and want in errs[0], (want, errs)
            assert ota.status(t)["state"] == "idle"
            assert K.snapshot(root) == {}, K.snapshot(root)
    finally:
        K.rmtree(root)


def test_transfer_resumes_after_a_reboot_from_what_is_staged():
    root = _dev()
    try:
        t = K.T(root)
        b = K.bundle(2)
        _begin(t, b)
        msgs = list(K.all_msgs(b))
        for p in msgs[: len(msgs) // 2]:
            assert ota.chunk(t, p) is None
        t2 = K.T(root)  # a reboot: nothing in RAM
        st = ota.status(t2)
        assert st["state"] == "receiving" and st["version"] == 2 and st["need"], st
        # a chunk after a gap is refused, saying which one is needed
        f, k = st["need"][-1]
        late = K.msg(b, f, k + 1) if len(K.data(b, f)) > (k + 1) * 256 else None
        if late:
            assert "out of order, file %d needs chunk %d" % (f, k) in ota.chunk(t2, late)
        # the same begin again resumes (nothing is wiped)
        assert _begin(t2, b)["bytes"] == st["bytes"]
        assert K.send_all(t2, b, st["need"]) == []
        assert ota.status(t2)["state"] == "ready"
        # a duplicate of a staged chunk is ignored
        assert ota.chunk(t2, msgs[1]) is None
        r = asyncio.run(otacmd.handle(t2, "ota_commit", {}))
        assert r["installed"] == 2
    finally:
        K.rmtree(root)


def test_commit_refuses_when_incomplete_or_a_file_changed_on_flash():
    root = _dev()
    try:
        t = K.T(root)
        b = K.bundle(2)
        _begin(t, b)
        msgs = list(K.all_msgs(b))
        for p in msgs[:-1]:
            assert ota.chunk(t, p) is None
        e = _unchanged_after(root, lambda: asyncio.run(otacmd.handle(t, "ota_commit", {})))
        assert e.startswith("not all staged: 1 files still needed"), e
        assert ota.chunk(t, msgs[-1]) is None
        p, _ = b["files"][1]
        with open(root + "ota/a/" + p, "r+b") as f:
            f.write(b"X")
        e = str(raises(ValueError, lambda: asyncio.run(otacmd.handle(t, "ota_commit", {}))))
        assert e == "file 2 %s: SHA-256 mismatch on flash: re-send it" % p, e
        assert ota.status(t)["need"] == [[2, 0]]
        assert otaboot.ptr(root) is None  # still the deployed tree
        assert K.send_all(t, b, [[2, 0]]) == []
        assert asyncio.run(otacmd.handle(t, "ota_commit", {}))["installed"] == 2
    finally:
        K.rmtree(root)


def test_abort_forgets_the_staged_update():
    root = _dev()
    try:
        t = K.T(root)
        b = K.bundle(2)
        _begin(t, b)
        K.send_all(t, b)
        assert asyncio.run(otacmd.handle(t, "ota_abort", {}))["state"] == "idle"
        assert K.snapshot(root) == {} and ota.idle(t)
        assert "no update in progress" in ota.chunk(t, K.msg(b, 0, 0))
    finally:
        K.rmtree(root)


def test_build_on_trial_rolls_back_after_k_boots_and_says_why():
    root = _dev()
    try:
        t, _, _ = _install(root, 2)
        otaboot.choose(root)
        otaboot.mark_healthy(root)
        t, _, r = _install(root, 3)
        assert r["slot"] == "b" and _read(root + "ota/ptr") == "b 3 a 2 1\n"
        # running b (first on sys.path) on trial
        for _ in range(otaboot.K):
            assert otaboot.choose(root) == "b"
        assert _read(root + "ota/boots") == "%d\n" % otaboot.K
        assert otaboot.choose(root) == "a"  # the K+1-th boot: back to version 2
        assert _read(root + "ota/ptr") == "a 2 - 0 0\n"
        why = _read(root + "ota/failed")
        assert why == "3 %d boots without a healthy status: rolled back to 2\n" % otaboot.K, why
        assert otaboot.choose(root) == "a"
        info = otaboot.info(root)
        assert info["failed"].startswith("3 ") and info["trial"] == 0
    finally:
        K.rmtree(root)


def test_boot_falls_back_to_the_deployed_tree_when_a_slot_is_not_complete():
    root = _dev()
    try:
        _install(root, 2)
        import os

        os.remove(root + "ota/a/ok")
        assert otaboot.choose(root) == "-"
        assert "slot a incomplete" in _read(root + "ota/failed")
        otaboot.put(root + "ota/ptr", "garbage\n")
        assert otaboot.choose(root) == "-"
        assert "unreadable" in _read(root + "ota/failed")
        otaboot.put(root + "ota/ptr", "a 2 - 0 1\n")
        otaboot.put(root + "ota/boots", "x\n")  # damaged counter: counts as used up
        assert otaboot.choose(root) == "-"
    finally:
        K.rmtree(root)


def test_select_runs_the_slot_from_its_folder_with_the_deployed_tree_next():
    import os
    import sys

    root = _dev()
    saved = list(sys.path)
    mods = dict(sys.modules)
    cwd = os.getcwd()
    try:
        _install(root, 2)
        assert otaboot.select(root) == "a"
        assert os.getcwd() == root + "ota/a"
        assert sys.path[:2] == ["", root[:-1]] and sys.path.count("") == 1, sys.path
        assert "telelogger.otaboot" not in sys.modules and "telelogger" not in sys.modules
        info = json.loads(json.dumps(__import__("telelogger.otaboot").otaboot.info(root)))
        assert info == {"ver": 2, "slot": "a", "trial": 1, "failed": None}, info
    finally:
        os.chdir(cwd)
        sys.path[:] = saved
        sys.modules.update(mods)
        K.rmtree(root)


def test_files_the_installed_build_has_are_copied_not_sent():
    import os

    root = _dev()
    try:
        b = K.bundle(2)
        fl = b["files"]
        # the deployed tree has files 1 and 3 byte for byte, file 2 with the same size but other bytes
        for i, (p, data) in enumerate(fl[:3]):
            d = root
            for part in p.split("/")[:-1]:
                d += part + "/"
                try:
                    os.mkdir(d[:-1])
                except OSError:
                    pass
            with open(root + p, "wb") as f:
                f.write(data if i != 1 else b"x" * len(data))
        t = K.T(root)
        _begin(t, b)
        assert K.send_all(t, b, [[0, 0]]) == []  # the manifest only
        st = asyncio.run(otacmd.handle(t, "ota_status", {}))
        assert st["reused"] == 2 and st["need"] == [[2, 0], [4, 0], [5, 0]], st
        assert K.send_all(t, b, st["need"]) == []
        r = asyncio.run(otacmd.handle(t, "ota_commit", {}))
        assert r["installed"] == 2
        for p, data in fl:
            with open(root + "ota/a/" + p, "rb") as f:
                assert f.read() == data, p
    finally:
        K.rmtree(root)
