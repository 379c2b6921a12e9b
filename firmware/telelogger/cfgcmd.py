# Remote configuration: the config_get / config_set commands (telelogger/FORMAT.md "Remote
# configuration"). Imported per command by cmdhandlers.rare() and dropped after: nothing here is
# resident. The running loop keeps no config dict, only the values it reads (its attributes): each
# command rebuilds the running config from flash (_running): appboot's validated config cache beside
# the queue (/queue -> /queue_cfg.json) while it was made from the config file as it is now, else that
# file through the boot validator; then the values that wait for a restart are put back as they run
# (t.cfg_was, kept by config_set). config_set validates the changed file with the boot validator
# (configcheck), writes it atomically (temporary file, rename) and the cache with it, applies at once
# what the running loop reads each cycle and reports the rest as applying at the next restart
# (t.cfg_note, carried in the status message).
import json
import os

from core.compat import const
from telelogger.tasks import unload

# (config key, the Telelogger attribute the loop reads each cycle (so a new value applies at the
# next cycle of that task), or (attribute, scale) when the loop keeps it in other units); const()
# pairs, no names on the heap (a dict of them is built per config_set, in _apply)
_LIVE = const((
    ("encoding", "encoding"),
    ("gnss.interval_ms", "gnss_ms"),
    ("batch.max_records", "batch_max"),
    ("batch.max_age_ms", "batch_age_ms"),
    ("batch.max_bytes", "payload_max"),
    ("queue.sync_ms", "sync_ms"),
    ("intervals.battery_ms", "battery_ms"),
    ("intervals.signal_ms", "signal_ms"),
    ("intervals.status_ms", "status_ms"),
    ("intervals.reconnect_min_ms", "backoff_min_ms"),
    ("intervals.reconnect_max_ms", "backoff_max_ms"),
    ("intervals.wdt_feed_ms", "wdt_ms"),
    ("standby.flush_s", ("flush_ms", 1000)),
    ("obd.dtc_interval_s", ("dtc_ms", 1000)),  # the VIN/DTC checks (telelogger/vehicle.py)
))
# ... and those the standby rules keep (telelogger/standby.py Standby), the same way
_LIVE_STANDBY = const((
    ("standby.voltage_off", ("voltage_off", 1)),
    ("standby.voltage_wake", ("voltage_wake", 1)),
    ("standby.stationary_s", ("stationary_ms", 1000)),
    ("standby.heartbeat_s", ("heartbeat_ms", 1000)),
))
# (obd.pids, intervals.record_ms and commands.window_s apply at once too: _apply)
_LEAVES = const(("obd.pids",))  # objects that are one value (replaced as a whole)
_NOT_CONFIG = const(("secrets", "config_path"))
_RESTART = const("applies at next restart (reboot command or power cycle)")


def path_of(t):
    """The config file the running device loaded: t.cfg_path (config.load records it as
    config_path, loopinit keeps it), else the ESP32's /config.json (telelogger.app.device_main)."""
    p = getattr(t, "cfg_path", None)
    if p:
        return p
    import sys

    if sys.platform == "esp32":
        return "/config.json"
    raise ValueError("the config file's path is unknown (config.load records it as config_path): nothing changed")


def _no_secret(key):
    top = key.split(".")[0]
    if top in _NOT_CONFIG:
        raise ValueError("%s: secrets are not config (secrets.json is changed over USB only, never remotely)" % key)


def _at(d, key):
    for part in key.split("."):
        if not isinstance(d, dict) or part not in d:
            raise ValueError("%s: no such config key" % key)
        d = d[part]
    return d


def _cache(t):
    """-> [cache path or None, the cache or None]: appboot's validated config ({"v", "files", "cfg"})
    beside the queue folder (/queue -> /queue_cfg.json: configcache.cache_path), when it is there."""
    root = getattr(t.store, "root", None)
    if not root:
        return [None, None]
    p = "%s_cfg.json" % root.rstrip("/")
    try:
        with open(p) as f:
            c = json.load(f)
        if c.get("v") == 1 and isinstance(c.get("cfg"), dict) and len(c["files"]) == 3:
            return [p, c]  # (v: appboot's _VERSION, the cache format)
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass  # absent or damaged: the file is validated instead
    return [p, None]


def _check(cfg, complete):
    from telelogger import configcheck

    try:
        return configcheck.check(cfg, complete)  # what the next boot's config.load will say
    finally:
        del configcheck
        unload("configcheck")
        unload("schema")


def _running(t, path, c, data=None):
    """The running config (with its secrets): c["cfg"] itself when the cache c was made from the
    config file as it is (and these defaults), else the file (data: already read) validated with the
    secrets this boot runs (the cache's; none cached: the command key alone, from t.cmd_cfg); the
    values config_set saved that wait for a restart are put back as they run (t.cfg_was)."""
    run = None
    if c is not None:
        from telelogger import appboot

        try:
            d = appboot._digests(path, None)  # [config, (secrets), defaults] as the cache keeps them
        finally:
            del appboot
            unload("appboot")
        if c["files"][0] == d[0] and c["files"][2] == d[2]:
            run = c["cfg"]
    if run is None:
        run = dict(data if data is not None else _read(path))
        sec = c["cfg"].get("secrets") if c is not None else None
        run["secrets"] = sec if isinstance(sec, dict) else {"hmac_key": t.cmd_cfg[0]}
        run = _check(run, False)
    for key in getattr(t, "cfg_was", None) or {}:
        _set(run, key, t.cfg_was[key])
    return run


async def get(t, args):
    """{"key"?} -> {"key", "value"} (the running value) or {"config": everything but secrets};
    "restart": {key: saved value} while config_set changes wait for a restart."""
    key = args.get("key")
    if key:
        _no_secret(key)
    p = path_of(t)
    c = _running(t, p, _cache(t)[1])
    if key:
        out = {"key": key, "value": _at(c, key)}
    else:
        out = {"config": dict((k, c[k]) for k in c if k not in _NOT_CONFIG)}
    note = getattr(t, "cfg_note", None)
    if note and note["restart"]:
        out["restart"] = note["restart"]
    return out


def _read(path):
    try:
        with open(path) as f:
            d = json.loads(f.read())
    except (OSError, ValueError) as e:
        raise ValueError("config file %s unreadable (%s): nothing changed" % (path, e))
    if not isinstance(d, dict):
        raise ValueError("config file %s is not a JSON object: nothing changed" % path)
    return d


def _write(path, text):
    """Atomic: the old file or the new one survives a power cut, never a torn one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        if hasattr(os, "fsync"):  # CPython; LittleFS commits on close
            os.fsync(f.fileno())
    try:
        os.rename(tmp, path)
    except OSError:  # a file system whose rename does not replace
        os.remove(path)
        os.rename(tmp, path)


def _set(d, key, v):
    parts = key.split(".")
    for p in parts[:-1]:
        nxt = d.get(p)
        if nxt is None:
            nxt = d[p] = {}
        elif not isinstance(nxt, dict):
            raise ValueError("%s: %s is not an object" % (key, p))
        else:
            nxt = d[p] = dict(nxt)  # a copy: the file's dict is not changed before validation
        d = nxt
    d[parts[-1]] = v


def _leaves(new, old, prefix, out):
    """Dotted keys whose value differs between two validated configs."""
    for k in new:
        if not prefix and k in _NOT_CONFIG:
            continue
        key = prefix + k
        a, b = new[k], old.get(k) if isinstance(old, dict) else None
        if isinstance(a, dict) and isinstance(b, dict) and key not in _LEAVES:
            _leaves(a, b, key + ".", out)
        elif a != b:
            out.append(key)


async def put(t, args):
    """{"set": {dotted key: value, ...}} -> {"now": {key: value}, "restart": {key: value},
    "unchanged": [keys], "note"?}. Refuses (ValueError / ConfigError naming the key and what is
    expected) with nothing changed when a value fails the config validator."""
    want = {}
    for key in args["set"]:
        v = args["set"][key]
        if isinstance(key, str) and key.startswith("obd.pids."):
            key = key.upper().replace("OBD.PIDS.", "obd.pids.")  # PID hex as the config keeps it
        want[key] = v
    path = path_of(t)
    raw = _read(path)
    cpath, c = _cache(t)
    run = _running(t, path, c, raw)
    new = dict(raw)
    for key in sorted(want):
        if not isinstance(key, str) or not key:
            raise ValueError("set: keys are dotted config keys (e.g. intervals.status_ms)")
        _no_secret(key)
        if key.startswith("obd.pids.") and "pids" not in (new.get("obd") or {}):
            _set(new, "obd.pids", dict(run["obd"]["pids"]))  # one PID changes the running set, not the defaults
        _set(new, key, want[key])
    cand = dict(new)
    cand["secrets"] = run["secrets"]
    full = _check(cand, True)
    for key in want:  # the file gets the normalised value ("0c" -> "0C", 12 -> 12.0)
        v = _at(full, key)
        if not isinstance(v, dict) or key in _LEAVES:
            _set(new, key, v)
    changed = []
    _leaves(full, run, "", changed)
    if new != raw:
        _write(path, json.dumps(new))
        if c is not None and run is c["cfg"]:
            # the cache follows (the same secrets, so their digest too): the next boot and command
            # need no validator
            from telelogger import appboot

            full["config_path"] = path
            try:
                appboot.save_config_cache(path, c["files"][1], cpath, full)
            finally:
                del appboot
                unload("appboot")
    note = getattr(t, "cfg_note", None)
    if note is None:
        note = t.cfg_note = {"changes": 0, "restart": {}}
        t.cfg_was = {}  # key -> its running value, while a saved one waits for a restart
    note["changes"] += 1
    was = t.cfg_was
    now, later = {}, {}
    for key in changed:
        v = _at(full, key)
        if _apply(t, key, v, full):
            now[key] = v
            note["restart"].pop(key, None)
        else:
            later[key] = note["restart"][key] = v
            if key not in was:
                try:
                    was[key] = _at(run, key)
                except ValueError:  # a key the running config has not
                    pass
    same = []
    for key in want:
        if not _touched(key, changed):  # (back to) the running value: nothing waits for a restart
            same.append(key)
            for d in (note["restart"], was):
                for k in list(d):
                    if k == key or k.startswith(key + "."):
                        d.pop(k)
    out = {"now": now, "restart": later, "unchanged": sorted(same)}
    if later:
        out["note"] = "%s %s" % (", ".join(sorted(later)), _RESTART)
    return out


def _touched(key, keys):
    """True when `key` (a leaf, a section, or one PID of obd.pids) is one of `keys`, contains one or
    lies inside one."""
    for k in keys:
        if k == key or k.startswith(key + ".") or key.startswith(k + "."):
            return True
    return False


def _apply(t, key, v, cfg):
    """Sets a changed value in the running loop -> True, or False when it waits for a restart.
    cfg: the new config (validated)."""
    a = dict(_LIVE).get(key)
    sb = dict(_LIVE_STANDBY).get(key)
    if a is not None:
        if isinstance(a, tuple):
            setattr(t, a[0], v * a[1])
        else:
            setattr(t, a, v)
    elif sb is not None:
        setattr(t.standby, sb[0], v * sb[1])
    elif key == "obd.pids":
        _pids(t, v, cfg)
    elif key == "intervals.record_ms":
        t.record_ms = v if v is not None else _shortest(t)
    elif key == "commands.window_s":
        if t.commands is not None and hasattr(t.commands, "window_ms"):
            t.commands.window_ms = v * 1000
        k, on, _w, n = t.cmd_cfg
        t.cmd_cfg = (k, on, v, n)  # a checker built again (cmdrun.command_handler) gets it too
    else:
        return False
    return True


def _shortest(t):
    return min([p.interval_ms for p in t.pids]) if t.pids else 1000


def _pids(t, pids, cfg):
    from telelogger.sampler import Pid

    now = t.now()
    old = dict((p.pid, p) for p in t.pids)
    keep = []
    for h in sorted(pids):
        n = int(h, 16)
        p = old.get(n)
        if p is None:
            p = Pid(n, pids[h], now)
        else:
            p.interval_ms = pids[h]
            p.due_ms = now
        keep.append(p)
    t.pids = keep
    if cfg["intervals"]["record_ms"] is None:
        t.record_ms = _shortest(t)
