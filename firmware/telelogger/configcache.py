# The validated config, kept on flash beside the files it was made from, so that a normal boot does
# not import the validator. Every name a module brings is interned for good on MicroPython (never
# freed, not even when the module is dropped): telelogger.configcheck + schema are ~120 names and
# ~10 KB of bytecode at the boot peak, paid at every boot for a config that has not changed.
#
#   cfg = load(cache_path, cfg_path, sec_path)   # the merged, validated config, or None when stale
#   save(cache_path, cfg_path, sec_path, cfg)     # after a successful validation
#
# The cache is valid while the config file, the secrets file and the defaults (telelogger/schema's
# compiled file, found on sys.path) are byte for byte the ones it was made from: their sizes and
# CRC-32s are stored in it (a changed file, or new firmware with other defaults, means validating
# again). `make deploy` writes it on the host with the same validator (scripts/deploy.py), so the
# first boot after a deploy is a normal boot too; scripts/run_host.py does the same for host runs.
# The file holds the secrets like secrets.json itself does. Format (JSON, one object):
#   {"v": 1, "files": [[size, crc], ...] (config, secrets or null, schema), "cfg": {...}}
import json

from core.compat import const

_VERSION = const(1)  # the cache format's "v"


def cache_path(store_root):
    """Beside the queue folder (/queue -> /queue_cfg.json), like the command counter: `deploy
    --wipe-queue` does not remove it."""
    return "%s_cfg.json" % store_root.rstrip("/")


def file_digest(path):
    """[size, crc32] of a file's bytes, or None when it cannot be read."""
    from binascii import crc32

    try:
        f = open(path, "rb")
    except OSError:
        return None
    c = n = 0
    buf = bytearray(256)
    mv = memoryview(buf)
    try:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            c = crc32(mv[:k], c)
            n += k
    except OSError:
        return None
    finally:
        f.close()
    return [n, c & 0xFFFFFFFF]


def schema_file(path=None):
    """The compiled defaults the firmware would import: telelogger/schema.(m)py on sys.path."""
    import sys

    for d in path if path is not None else sys.path:
        for name in ("telelogger/schema.mpy", "telelogger/schema.py"):
            p = (d.rstrip("/") + "/" + name) if d else name
            try:
                open(p, "rb").close()
                return p
            except OSError:
                pass
    return None


def digests(cfg_path, sec_path, schema=None):
    return [file_digest(cfg_path), file_digest(sec_path) if sec_path else None,
            file_digest(schema or schema_file() or "")]


def load(path, cfg_path, sec_path=None, schema=None):
    """The cached config when every file it was made from is unchanged, else None (absent, stale,
    unreadable or damaged cache: the caller validates again)."""
    try:
        with open(path) as f:
            c = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(c, dict) or c.get("v") != _VERSION or not isinstance(c.get("cfg"), dict):
        return None
    want = digests(cfg_path, sec_path, schema)
    if want[0] is None or want[2] is None or c.get("files") != want:
        return None
    cfg = c["cfg"]
    if "config_path" in cfg:
        cfg["config_path"] = cfg_path  # where it was validated (make deploy: on the host) is not where it is
    return cfg


def save(path, cfg_path, sec_path, cfg, schema=None):
    """Writes the cache atomically (a temporary file renamed over it). -> True when it was written
    and reads back as valid (the caller may then reset to boot without the validator's names)."""
    import os

    files = digests(cfg_path, sec_path, schema)
    if files[0] is None or files[2] is None:
        return False
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump({"v": _VERSION, "files": files, "cfg": cfg}, f)
        os.rename(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        return False
    back = load(path, cfg_path, sec_path, schema)
    return back is not None and back == dict(cfg, config_path=cfg_path) if "config_path" in cfg else back == cfg
