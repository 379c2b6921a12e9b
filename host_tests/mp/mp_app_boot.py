# A configuration error at boot never becomes a reset loop (issue: the shipped example reset every
# 10 s): the device says what is wrong once, keeps it in /last_error.txt, and waits for a fixed file.
import json
import os
import sys

from telelogger.app import load_config_waiting

GOOD = {"broker": {"host": "broker.local", "port": 1883, "tls": False}, "commands": {"enabled": False}}


def _dir(name):
    # per runtime: the CPython and the MicroPython run of a test may run at once (make test's workers)
    d = "mpboot_%s_%s" % (name, sys.implementation.name)
    try:
        os.mkdir(d)
    except OSError:
        pass
    for f in os.listdir(d):
        os.remove(d + "/" + f)
    return d


def _write(path, obj):
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))


def _read(path):
    with open(path) as f:
        return f.read()


def test_invalid_config_waits_and_names_the_key():
    d = _dir("bad")
    _write(d + "/config.json", {"broker": {"host": "broker.local", "port": "many"}})
    sleeps = []
    cfg = load_config_waiting(d + "/config.json", d + "/secrets.json", poll_ms=1000, sleep_ms=sleeps.append,
                              error_path=d + "/last_error.txt", max_polls=3)
    assert cfg is None  # still waiting: it did not raise, did not reset
    assert sleeps == [1000, 1000, 1000]
    err = _read(d + "/last_error.txt")
    assert "broker.port" in err, err


def test_a_fixed_file_is_picked_up():
    d = _dir("fix")
    _write(d + "/config.json", "{not json")
    polls = []

    def sleep(ms):
        polls.append(ms)
        if len(polls) == 2:  # the owner copies a fixed file while the device waits
            _write(d + "/config.json", GOOD)

    cfg = load_config_waiting(d + "/config.json", d + "/secrets.json", poll_ms=500, sleep_ms=sleep,
                              error_path=d + "/last_error.txt", max_polls=10)
    assert cfg is not None and cfg["broker"]["host"] == "broker.local"
    assert len(polls) == 2
    assert "config.json" in _read(d + "/last_error.txt")


def test_missing_config_waits():
    d = _dir("none")
    cfg = load_config_waiting(d + "/config.json", d + "/secrets.json", poll_ms=10, sleep_ms=lambda ms: None,
                              error_path=d + "/last_error.txt", max_polls=2)
    assert cfg is None
    assert "config" in _read(d + "/last_error.txt")


def test_the_validator_is_not_left_resident():
    import sys

    d = _dir("res")
    _write(d + "/config.json", GOOD)
    before = "telelogger.config" in sys.modules
    cfg = load_config_waiting(d + "/config.json", d + "/secrets.json", sleep_ms=lambda ms: None, max_polls=0,
                              error_path=d + "/last_error.txt")
    assert cfg is not None
    assert ("telelogger.config" in sys.modules) == before


def test_drop_modules_frees_the_package_attribute():
    import sys

    from telelogger.app import drop_modules

    import telelogger

    had = "telelogger.keys" in sys.modules
    from telelogger import keys  # noqa: F401 - imported to be dropped

    drop_modules("telelogger.keys", ())
    assert "telelogger.keys" not in sys.modules
    assert getattr(telelogger, "keys", None) is None
    if had:  # leave the suite's other modules as they were
        import telelogger.keys  # noqa: F401


def test_device_main_error_end_notes_and_resets_through_the_board():
    from telelogger.appboot import stopped

    class Board:
        resets = 0

        def reset(self):
            self.resets += 1

    d = _dir("stopped")
    assert stopped(ValueError("no modem"), None, 0, d + "/last_error.txt") is False  # no board: re-raised
    assert _read(d + "/last_error.txt").strip() == "ValueError: no modem"
    b = Board()
    assert stopped(OSError(5), b, 1, d + "/last_error.txt") is True and b.resets == 1
    assert _read(d + "/last_error.txt").startswith("OSError: ")
    os.remove(d + "/last_error.txt")


def test_preload_imports_the_resident_modules_and_builds_the_codecs_table():
    # what stays imported is imported first (telelogger.appboot.preload_resident, per the config's roles),
    # and the record codec's table of decimal places is built then too, with telelogger.keys dropped again
    import sys

    from core.errors import forget
    from telelogger import appboot

    d = _dir("preload")
    _write(d + "/config.json", {"transport": "wifi", "obd": {"enabled": False}, "gnss": {"source": "none"}})
    had = [m for m in ("telelogger.record", "telelogger.keys") if m in sys.modules]
    forget("telelogger.record")
    forget("telelogger.keys")
    try:
        done = appboot.preload_resident(d + "/config.json")
        assert "telelogger.record" in done and "net.wifi" in sys.modules, done
        assert "at.engine" not in done and "obdii.obd" not in done  # not this config's roles
        rec = sys.modules["telelogger.record"]
        assert rec._dps is not None  # built at preload
        assert "telelogger.keys" not in sys.modules  # read once and dropped
        assert rec.dp_of(0x24) == 2 and "telelogger.keys" not in sys.modules  # battery: 2 decimals, from the table
        assert appboot.preload_resident(d + "/missing.json") == []  # unreadable: the validator reports it later
    finally:
        for m in had:
            __import__(m)
