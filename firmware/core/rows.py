# One line of a table module, read from its file on flash. The table modules (obdii/pidtable.py,
# modem/code_table.py) are data only and are not imported on the device: their lines are stored
# verbatim in the .py and in the .mpy (a str constant's bytes), so a line is found in the file by
# its key, _BUF bytes at a time: a lookup needs no block bigger than that and never loads a table
# (strings of kilobytes, a block a fragmented heap may not have). Without the file (a frozen image)
# the module is imported for the lookup (its TABLE: str chunks, each line after a newline) and
# dropped again. This module too is imported for one lookup (core.errors.lookup) and dropped.
from core.compat import const

_BUF = const(200)  # the longest line (key included) is shorter (host_tests/mp/mp_cmqtt.py and mp_obd.py check)


def find(path, mod, keys, ok=None):
    """For each key (bytes) of `keys`: the first line of table module `mod` (its dotted name) that
    starts with the key after a newline and for which ok(line) is true, as a str (key included),
    or None. path: the directory of its file, ending in "/" (from a resident module's __file__),
    or None (no file: a frozen image); the file is path + the module's last name + ".py", else ".mpy"."""
    f = None
    if path is not None:
        p = path + mod[mod.rfind(".") + 1 :]
        try:
            f = open(p + ".py", "rb")  # the one an import would load: .py first, as MicroPython
        except OSError:
            try:
                f = open(p + ".mpy", "rb")
            except OSError:
                pass
    if f is None:
        return _imported(mod, keys, ok)
    buf = bytearray(_BUF)
    with f:
        return [_scan(f, buf, b"\n" + k, ok) for k in keys]


def _scan(f, buf, k, ok):
    p = 0
    while True:
        f.seek(p)
        n = f.readinto(buf)
        i = buf.find(k, 0, n)
        if i >= 0:  # the line: up to its end
            f.seek(p + i + 1)
            n = f.readinto(buf)
            j = buf.find(b"\n", 0, n)
            if j > 0:
                try:
                    t = buf[:j].decode()
                except UnicodeError:  # (bytes of the .mpy's code that happen to match are not a line)
                    t = None
                if t is not None and (ok is None or ok(t)):
                    return t
            p += i + 1
        elif n < _BUF:
            return None
        else:
            p += n - len(k) + 1  # the key may straddle two reads


def _imported(mod, keys, ok):
    import sys

    had = mod in sys.modules
    try:
        m = __import__(mod, None, None, ("TABLE",))
        return [_in(m.TABLE, "\n" + k.decode(), ok) for k in keys]
    finally:
        if not had:
            from core.errors import forget

            forget(mod)


def _in(table, k, ok):
    for c in table:
        i = c.find(k)
        while i >= 0:
            j = c.find("\n", i + 1)
            t = c[i + 1 : j] if j > 0 else c[i + 1 :]
            if ok is None or ok(t):
                return t
            i = c.find(k, i + 1)
    return None
