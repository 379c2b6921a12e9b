# mp-heap: 256K
# Remote configuration on both runtimes (telelogger/cfgcmd.py through the signed command path):
# config_set validates with the boot validator, writes the file atomically, applies at once what
# the loop reads each cycle and says "applies at next restart" for the rest; a bad value changes
# nothing and the reply names the key and what is expected; secrets are never read or written.
import json
import os
import sys

import cmdsigner as S
from loopfakes import make, stop
from telelogger import commands as C
from telelogger import config

KEY = "mp-cmd-config-key-" + "Qw8Er7Ty6Ui5" * 2
NOW_MS = 1764000000000
FILE_CFG = {"device_id": "TEST01", "topic_prefix": "fm", "encoding": "json",
            "broker": {"host": "broker.test", "port": 1883, "tls": False},
            "obd": {"pids": {"0C": 1000, "0D": 1000, "05": 3000}},
            "intervals": {"battery_ms": 2000, "status_ms": 10000}}


def _tmp():
    return "/tmp/mpcfgcmd-" + "".join("%02x" % b for b in os.urandom(5)) + ".json"


def _read(p):
    with open(p) as f:
        return f.read()


def _rm(p):
    for x in (p, p + ".tmp"):
        try:
            os.remove(x)
        except OSError:
            pass


class Dev:
    """A loop from loopfakes with the real CommandHandler, its config loaded from a file."""

    def __init__(self):
        self.path = _tmp()
        with open(self.path, "w") as f:
            f.write(json.dumps(FILE_CFG))
        c = json.loads(json.dumps(FILE_CFG))  # the running config is the file's
        c["secrets"] = {"hmac_key": KEY, "mqtt_pass": "very-secret-pass"}
        self.t, self.clk, self.pub, self.store, self.obd = make(c)
        self.t.cfg_path = self.path  # what config.load records (config_path), loopinit keeps
        self.t.set_utc(NOW_MS)
        self.n = 0

    async def cmd(self, name, args=None):
        from telelogger.cmdhandlers import handlers

        if self.t.commands is None:
            self.t.commands = C.CommandHandler(KEY, self.clk, handlers(self.t), utc_ms=self.t.utc_ms,
                                               device_id="TEST01")
        self.n += 1
        p = S.sign(KEY, {"cmd": name, "args": args or {}, "n": self.n, "ts": self.t.utc_ms() // 1000}, "TEST01")
        return S.verify_reply(KEY, await self.t.commands.handle(p), "TEST01")

    def done(self):
        _rm(self.path)


def _no_appboot():
    """Start without telelogger.appboot loaded (another test in this process may have imported it), so a
    test can see that a command does not leave it behind."""
    sys.modules.pop("telelogger.appboot", None)


def _dropped():
    return "telelogger.cfgcmd" not in sys.modules and "telelogger.configcheck" not in sys.modules


async def test_config_set_applies_intervals_at_once_and_writes_the_file():
    d = Dev()
    try:
        r = await d.cmd("config_set", {"set": {"intervals.status_ms": 60000, "batch.max_records": 7}})
        assert r["ok"] is True and r["cmd"] == "config_set", r
        res = r["result"]
        assert res["now"] == {"intervals.status_ms": 60000, "batch.max_records": 7}, res
        assert res["restart"] == {} and "note" not in res, res
        assert d.t.status_ms == 60000 and d.t.batch_max == 7
        f = json.loads(_read(d.path))
        assert f["intervals"] == {"battery_ms": 2000, "status_ms": 60000} and f["batch"] == {"max_records": 7}
        assert f["broker"] == FILE_CFG["broker"]  # the rest of the file as it was
        r = await d.cmd("config_get", {"key": "intervals.status_ms"})
        assert r["result"] == {"key": "intervals.status_ms", "value": 60000}, r
        assert _dropped()
        again = config.load(d.path)  # what the next boot reads
        assert again["intervals"]["status_ms"] == 60000 and again["config_path"] == d.path
    finally:
        d.done()


async def test_bad_value_changes_nothing_and_names_the_key():
    d = Dev()
    try:
        before = _read(d.path)
        for args, key, expect in (
                ({"intervals.status_ms": 5}, "intervals.status_ms", "between 1000 and 86400000"),
                ({"intervals.battery_ms": 500, "encoding": "xml"}, "encoding", "compact|json"),
                ({"intervals.statu_ms": 1000}, "intervals.statu_ms", "known keys"),
                ({"obd.pids": {"0C": 50}}, "obd.pids.0C", "100 and 3600000"),
                ({"standby.voltage_wake": 11.0}, "standby.voltage_wake", "greater than standby.voltage_off")):
            r = await d.cmd("config_set", {"set": args})
            assert r["ok"] is False and r["key"] == key, (args, r)
            assert expect in r["expected"] and key in r["error"], r
            assert r["cmd"] == "config_set" and r["n"] == d.n  # authentic: answered, with its n
        assert _read(d.path) == before
        assert d.t.status_ms == 10000 and d.t.battery_ms == 2000 and d.t.encoding == "json"
        assert [p.interval_ms for p in d.t.pids if p.pid == 0x0C] == [1000]
        assert d.t.commands.stats["rejected"] == 0 and d.t.commands.stats["failed"] == 5
        assert _dropped()
    finally:
        d.done()


async def test_restart_keys_are_saved_and_reported_in_reply_and_status():
    from telelogger import status

    d = Dev()
    try:
        r = await d.cmd("config_set", {"set": {"broker.port": 8883, "broker.tls": True, "broker.tls_verify": False,
                                               "intervals.battery_ms": 4000}})
        res = r["result"]
        assert r["ok"] is True and res["now"] == {"intervals.battery_ms": 4000}, r
        assert res["restart"] == {"broker.port": 8883, "broker.tls": True, "broker.tls_verify": False}, res
        assert "applies at next restart" in res["note"] and "broker.port" in res["note"]
        st = status.status(d.t)
        assert st["cfg"] == {"changes": 1, "restart": res["restart"]}, st
        g = (await d.cmd("config_get", {"key": "broker.port"}))["result"]
        assert g["value"] == 1883 and g["restart"]["broker.port"] == 8883, g
        assert config.load(d.path)["broker"]["port"] == 8883
        r = await d.cmd("config_set", {"set": {"broker.port": 1883, "broker.tls": False, "broker.tls_verify": True}})
        assert r["result"]["unchanged"] == ["broker.port", "broker.tls", "broker.tls_verify"], r
        assert status.status(d.t)["cfg"]["restart"] == {}
    finally:
        d.done()


async def test_pids_standby_and_derived_record_interval_apply_at_once():
    d = Dev()
    try:
        assert d.t.record_ms == 1000
        r = await d.cmd("config_set", {"set": {"obd.pids": {"0c": 2000, "11": 500}, "standby.stationary_s": 30,
                                               "standby.voltage_off": 11.5}})
        assert r["ok"] and r["result"]["now"]["obd.pids"] == {"0C": 2000, "11": 500}, r
        assert sorted((p.pid, p.interval_ms) for p in d.t.pids) == [(0x0C, 2000), (0x11, 500)]
        assert d.t.record_ms == 500  # intervals.record_ms null: the shortest PID interval
        assert d.t.standby.stationary_ms == 30000 and abs(d.t.standby.voltage_off - 11.5) < 1e-3
        assert json.loads(_read(d.path))["obd"]["pids"] == {"0C": 2000, "11": 500}
    finally:
        d.done()


async def test_secrets_are_not_config():
    d = Dev()
    try:
        before = _read(d.path)
        r = await d.cmd("config_get")
        text = json.dumps(r)
        assert r["ok"] and "secrets" not in r["result"]["config"] and KEY not in text, r
        assert "very-secret-pass" not in text and "config_path" not in r["result"]["config"]
        assert r["result"]["config"]["intervals"]["status_ms"] == 10000
        r = await d.cmd("config_get", {"key": "secrets.hmac_key"})
        assert r["ok"] is False and "secrets are not config" in r["error"] and KEY not in json.dumps(r), r
        r = await d.cmd("config_set", {"set": {"secrets.mqtt_pass": "x"}})
        assert r["ok"] is False and "secrets are not config" in r["error"], r
        assert _read(d.path) == before
    finally:
        d.done()


async def test_config_set_over_the_running_loop():
    """Through the cmd topic and the loop's cmd task: the reply is published, the status interval
    takes effect for the status task."""
    d = Dev()
    try:
        from telelogger.cmdhandlers import handlers

        t, clk, pub = d.t, d.clk, d.pub
        t.commands = C.CommandHandler(KEY, clk, handlers(t), utc_ms=t.utc_ms, device_id="TEST01")
        t.start()
        await clk.advance(3000)
        p = S.sign(KEY, {"cmd": "config_set", "args": {"set": {"intervals.status_ms": 2000}}, "n": 5,
                         "ts": t.utc_ms() // 1000}, "TEST01")
        pub.inject("fm/TEST01/cmd", p)
        await clk.advance(10500)  # the status task's running sleep (10 s) ends, then every 2 s
        n0 = len([1 for tp, _p, _q in pub.sent if tp == "fm/TEST01/status"])
        await clk.advance(8000)
        n1 = len([1 for tp, _p, _q in pub.sent if tp == "fm/TEST01/status"])
        await stop(t, clk)
        replies = [S.verify_reply(KEY, x, "TEST01") for tp, x, _q in pub.sent if tp == "fm/TEST01/reply"]
        assert replies and replies[0]["ok"] and replies[0]["result"]["now"] == {"intervals.status_ms": 2000}
        assert n1 - n0 >= 3, (n0, n1)
    finally:
        d.done()


def test_a_loaded_config_records_its_path_and_validates_again():
    p = _tmp()
    try:
        with open(p, "w") as f:
            f.write(json.dumps(FILE_CFG))
        c = config.load(p)
        assert c["config_path"] == p
        assert config.validate(c)["config_path"] == p  # not an unknown key
    finally:
        _rm(p)


async def test_one_pid_changes_the_running_set():
    d = Dev()
    try:
        f = json.loads(_read(d.path))
        del f["obd"]  # a file without obd.pids: the default set runs
        with open(d.path, "w") as fh:
            fh.write(json.dumps(f))
        from telelogger import config as C

        n = len(C.DEFAULTS["obd"]["pids"])  # what runs now, by the file
        r = await d.cmd("config_set", {"set": {"obd.pids.0c": 500}})
        assert r["ok"] and list(r["result"]["now"]) == ["obd.pids"], r
        pids = json.loads(_read(d.path))["obd"]["pids"]
        assert len(pids) == n and pids["0C"] == 500 and pids["2F"] == 60000, pids  # the others kept
        r = await d.cmd("config_set", {"set": {"obd.pids.0C": 500}})
        assert r["result"]["unchanged"] == ["obd.pids.0C"], r
    finally:
        d.done()


def _cached(d, status_ms=None):
    """Gives d's loop a queue folder with appboot's validated-config cache beside it (as make deploy
    and the boot leave it on the device), made from d's file and a secrets file; status_ms: a value
    written into the cached config only (it shows which one a command read). -> (cache path, secrets path)."""
    from telelogger import appboot

    d.t.store.root = d.path + ".q"
    cache, sec = d.path + ".q_cfg.json", d.path + ".sec"
    with open(sec, "w") as f:
        f.write(json.dumps({"hmac_key": KEY, "mqtt_pass": "very-secret-pass"}))
    c = config.load(d.path, sec)
    if status_ms is not None:
        c["intervals"]["status_ms"] = status_ms
    assert appboot.save_config_cache(d.path, sec, cache, c)
    d.extra = (cache, sec)
    return cache, sec


def _done(d):
    for p in getattr(d, "extra", ()):
        _rm(p)
    d.done()


async def test_the_loop_keeps_no_config_and_config_get_answers_what_runs():
    """The Telelogger keeps the values it reads, not the config dict (3-4 KB of live heap): config_get
    rebuilds the running config from flash, with what config_set applied at once and, for what waits
    for a restart, the value that still runs."""
    _no_appboot()
    d = Dev()
    try:
        t = d.t
        assert not hasattr(t, "cfg") and t.cfg_path == d.path
        assert t.dtc_ms == 600000 and t.cmd_cfg[0] == KEY  # obd.dtc_interval_s's default; the command key
        assert len(t.__dict__) <= 73, sorted(t.__dict__)  # 74 and more: a bigger instance table (+192 B)
        r = await d.cmd("config_set", {"set": {"intervals.status_ms": 45000, "broker.keepalive": 90,
                                               "obd.dtc_interval_s": 120, "commands.window_s": 120}})
        assert r["result"]["now"] == {"intervals.status_ms": 45000, "obd.dtc_interval_s": 120,
                                      "commands.window_s": 120}, r
        assert t.status_ms == 45000 and t.dtc_ms == 120000 and t.cmd_cfg[2] == 120
        assert t.commands.window_ms == 120000
        assert not hasattr(t, "cfg")
        get = {}
        for k in ("intervals.status_ms", "broker.keepalive", "obd.dtc_interval_s", "intervals.battery_ms"):
            get[k] = (await d.cmd("config_get", {"key": k}))["result"]["value"]
        assert get == {"intervals.status_ms": 45000, "broker.keepalive": 60, "obd.dtc_interval_s": 120,
                       "intervals.battery_ms": 2000}, get  # keepalive: 90 saved, 60 runs until the restart
        whole = (await d.cmd("config_get"))["result"]
        assert whole["config"]["broker"]["keepalive"] == 60 and whole["restart"] == {"broker.keepalive": 90}
        assert json.loads(_read(d.path))["broker"]["keepalive"] == 90
        r = await d.cmd("config_set", {"set": {"broker.keepalive": 60}})  # back to what runs
        assert r["result"]["unchanged"] == ["broker.keepalive"] and r["result"]["restart"] == {}, r
        assert (await d.cmd("config_get", {"key": "broker.keepalive"}))["result"] == {
            "key": "broker.keepalive", "value": 60}
        assert _dropped() and "telelogger.appboot" not in sys.modules, "the command left appboot loaded"
    finally:
        d.done()


async def test_config_commands_read_the_cache_beside_the_queue_and_keep_it_current():
    """With appboot's cache beside the queue (the device's /queue_cfg.json) a command reads it while
    it was made from the config file as it is; config_set writes it again with the file (same
    secrets), so the next boot needs no validator and the next command reads it too."""
    from telelogger import appboot

    _no_appboot()
    d = Dev()
    try:
        cache, sec = _cached(d, status_ms=12345)
        g = (await d.cmd("config_get", {"key": "intervals.status_ms"}))["result"]
        assert g["value"] == 12345, g  # the cache's (the validator did not run)
        cache, sec = _cached(d)  # the true one
        r = await d.cmd("config_set", {"set": {"intervals.battery_ms": 3000, "broker.port": 8883}})
        assert r["ok"] and r["result"]["now"] == {"intervals.battery_ms": 3000}, r
        assert r["result"]["restart"] == {"broker.port": 8883}, r
        boot = appboot.load_config_cached(d.path, sec, cache)  # what the next boot gets, without the validator
        assert boot is not None and boot == config.load(d.path, sec), boot
        assert boot["broker"]["port"] == 8883 and boot["secrets"]["mqtt_pass"] == "very-secret-pass"
        g = (await d.cmd("config_get", {"key": "broker.port"}))["result"]
        assert g["value"] == 1883 and g["restart"] == {"broker.port": 8883}, g  # 1883 runs
        assert (await d.cmd("config_get", {"key": "intervals.battery_ms"}))["result"]["value"] == 3000
        f = json.loads(_read(d.path))
        f["intervals"]["status_ms"] = 20000  # changed over USB: the cache is stale, the file is validated
        with open(d.path, "w") as fh:
            fh.write(json.dumps(f))
        assert (await d.cmd("config_get", {"key": "intervals.status_ms"}))["result"]["value"] == 20000
        assert (await d.cmd("config_get", {"key": "broker.port"}))["result"]["value"] == 1883
        assert _dropped() and "telelogger.appboot" not in sys.modules, "the command left appboot loaded"
    finally:
        _done(d)
