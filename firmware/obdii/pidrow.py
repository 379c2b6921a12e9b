# A PID's row of the table (obdii/pidtable.py) as obdii.obd.entry caches it, read from the table
# module's file beside obdii/obd by core/rows.py (a lookup needs no block bigger than 200 bytes and
# never loads the table; without the file, in a frozen image, the table is imported for the lookup
# and dropped again): imported per first use of a PID (core.errors.lookup) and dropped again.
from core.errors import lookup


def entry(pid, path):
    """(name, unit, nbytes, formula_index, mul, div, offset) for `pid`, or 0 (not in the table).
    path: obdii/obd's __file__ (None: none, e.g. a frozen image)."""
    if not 0 <= pid < 256:
        return 0
    # (bytes of the .mpy's code that happen to match a key are not a row: a row has 7 fields)
    t = lookup("core.rows", "find", None if path is None else path[: path.rfind("/") + 1], "obdii.pidtable",
               (b"%02X " % pid,), lambda t: len(t.split()) == 7)[0]
    if not t:
        return 0
    f = t.split()
    mul, div = f[5].split("/")
    # formula_index: pidtable.FORMULAS in order (a test checks)
    fs = "A A*256+B C*256+D A*2^24+B*2^16+C*256+D".split()
    return (f[1], f[2], int(f[3]), fs.index(f[4]), int(mul), int(div), int(f[6]))
