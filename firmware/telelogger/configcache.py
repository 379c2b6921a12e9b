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
# The code is telelogger/appboot.py's (load_config_cached, save_config_cache): the device boots with
# that one module. This module is the tools' API (scripts/deploy.py, scripts/run_host.py, tests); the
# device never imports it.
from telelogger import appboot


def cache_path(store_root):
    """Beside the queue folder (/queue -> /queue_cfg.json), like the command counter: `deploy
    --wipe-queue` does not remove it."""
    return "%s_cfg.json" % store_root.rstrip("/")


def load(path, cfg_path, sec_path=None, schema=None):
    """The cached config when every file it was made from is unchanged, else None (absent, stale,
    unreadable or damaged cache: the caller validates again)."""
    return appboot.load_config_cached(cfg_path, sec_path, path, schema)


def save(path, cfg_path, sec_path, cfg, schema=None):
    """Writes the cache atomically (a temporary file renamed over it). -> True when it was written
    and reads back as valid."""
    return appboot.save_config_cache(cfg_path, sec_path, path, cfg, schema)
