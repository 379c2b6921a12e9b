# What the hwcheck runner and its check areas share: item states, formatting, config access and
# dropping modules. Areas import it (not the package), so no area imports its runner.
import gc
import sys

PASS = "PASS"
FAIL = "FAIL"
WARN = "WARN"
SKIP = "SKIP"
INFO = "INFO"
NAME_W = 13
HOST_BOARD = "esp32-sim7600"  # on a host without board.json or --board: devtypes empty, no comparison

# Only on MicroPython are drivers dropped after their area (the RAM is the device's); on CPython
# other code in the same process may hold them. The area modules are dropped everywhere.
_MP = sys.implementation.name == "micropython"


def why(e):
    s = str(e)
    if not s or s == "None":
        s = type(e).__name__
    return s


def err_text(e):
    """'error 30 (connection refused: bad user name or password)' for an error with a code and its
    meaning (the drivers' errors carry both), else the exception's text."""
    code = getattr(e, "code", None)
    meaning = getattr(e, "meaning", None)
    if isinstance(code, int) and meaning:
        return "error %d (%s)" % (code, meaning)
    return why(e)


def bad_text(s):
    """True when a config string would break the AT command it goes into (a quote, a control character)."""
    for ch in s:
        if ch == '"' or ord(ch) < 32 or ord(ch) == 127:
            return True
    return False


def format_item(status, name, detail, fix=None):
    """The one line printed for an item: `FAIL  SIM           <detail>  fix: <fix>`."""
    line = "%-4s  %s %s" % (status, (name + " " * NAME_W)[:NAME_W], detail)
    if fix and status in (FAIL, WARN, SKIP):
        line += "  fix: " + fix
    return line


def cfg_get(cfg, section, key, default=None):
    """cfg[section][key], else default. The section "secrets" falls back to the top level (the
    transports read secrets there, telelogger.config keeps them under cfg["secrets"])."""
    if not cfg:
        return default
    sec = cfg.get(section)
    if isinstance(sec, dict) and sec.get(key) is not None:
        return sec.get(key)
    if section == "secrets" and cfg.get(key) is not None:
        return cfg.get(key)
    return default


def drop_module(name):
    """Forget a module: sys.modules and the attribute its parent package holds (core.errors.forget)."""
    from core.errors import forget

    forget(name)


def drop_new(before):
    """Drop the modules imported since `before` (a set of names), except, on CPython, the drivers."""
    for name in [n for n in sys.modules if n not in before]:
        if _MP or name.startswith("hwcheck."):
            drop_module(name)
    gc.collect()
