# Boot only: import the modules that stay imported while the telelogger runs, first, before anything
# that is imported for boot and dropped again (the board description, the config validator, the
# assembly, the modem bring-up). What lives for good is then packed at the bottom of the heap and
# what boot drops leaves one free region above it instead of holes between resident bytecode. It
# matters most for MicroPython's interned-name pool: past 1,260 names it allocates its next table in
# one piece of ~9 KB, which a fragmented heap cannot give (the "allocating 1280 bytes" MemoryError).
#
#   preload(cfg_path)   # in main: before the board, the config and the assembly
#
# The lists are per role; the modules each one pulls in come with it. The board's own modules (its
# streams: core.stream on the ESP32, core.serial on a host) come with the board. host_tests/test_boot_heap.py checks
# that what make sim keeps imported while it runs is what preload imported.
import sys


def modules(cfg):
    """The resident modules for a config (raw or validated: only transport, gnss.source and
    obd.enabled are read, with the validator's defaults)."""
    # "role: modules", one line each, in one string: a short module name as a literal would be an
    # interned name even where that module is never loaded (net.wifi on a cellular device)
    roles = {}
    for ln in ("telelogger: core.unload telelogger.store telelogger.record telelogger.status telelogger.sampler "
               "telelogger.standby telelogger.loop telelogger.app\n"  # always
               "cellular: at.engine net.cellular telelogger.modemctl\n"
               "wifi: net.wifi\n"
               "obd: obdii.elm obdii.obd\n"  # obd.enabled
               "modem: at.engine gnss.modem\n"  # gnss.source
               "uart: gnss.nmea\n"
               "coproc: gnss.coproc\n"
               "at_log: at.atlog").split("\n"):  # debug.at_log
        k, _, v = ln.partition(": ")
        roles[k] = v.split()
    transport = cfg.get("transport", "cellular")
    out = roles["telelogger"]
    out += roles["cellular" if transport == "cellular" else "wifi"]
    if (cfg.get("obd") or {}).get("enabled", True):
        out += roles["obd"]
    out += roles.get((cfg.get("gnss") or {}).get("source", "uart"), [])
    if (cfg.get("debug") or {}).get("at_log"):
        out += roles["at_log"]
    return out


def preload(cfg_path):
    """Imports modules(config file) in order. A config that cannot be read is the validator's to
    report (later): nothing is preloaded then. -> the modules imported."""
    import json

    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
        names = modules(cfg if isinstance(cfg, dict) else {})
    except (OSError, ValueError, AttributeError):
        return []
    done = []
    for m in names:
        if m not in sys.modules:
            __import__(m)
            done.append(m)
    return done
