# A PID's row of the table (obdii/pidtable.py) as obdii.obd.entry caches it, read from the table
# module's file: imported per first use of a PID (core.errors.lookup) and dropped again.
# The file is its .py, else its .mpy beside obdii/obd (the rows are stored verbatim in both), read
# 128 bytes at a time: a lookup needs no block bigger than that and never loads the table (strings
# of up to 1.7 KB, a block a fragmented heap may not have). Without the file (a frozen image) the
# table is imported for the lookup and dropped again.
from core.errors import lookup


def entry(pid, path):
    """(name, unit, nbytes, formula_index, mul, div, offset) for `pid`, or 0 (not in the table).
    path: obdii/obd's __file__ (None: none, e.g. a frozen image)."""
    t = 0
    f = None  # the table file
    if not 0 <= pid < 256:
        return 0
    try:
        if path is None:
            raise OSError
        p = path[: path.rfind("/") + 1]
        try:
            f = open(p + "pidtable.py", "rb")  # the one the import would load: .py first, as MicroPython
        except OSError:
            f = open(p + "pidtable.mpy", "rb")
    except OSError:  # no table file: the table imported for the lookup, dropped again
        t = lookup("obdii.pidtable", "row", pid)
    if t == 0 and f is not None:
        key = b"\n%02X " % pid
        buf = bytearray(128)
        with f:
            p = 0
            while True:
                f.seek(p)
                n = f.readinto(buf)
                i = buf.find(key, 0, n)
                if i >= 0:  # the row: up to the end of its line (< 80 characters)
                    f.seek(p + i + 1)
                    n = f.readinto(buf)
                    j = buf.find(b"\n", 0, n)
                    t = buf[:j].decode() if j > 0 else ""
                    if len(t.split()) == 7:  # (bytes of the .mpy's code that happen to match are not a row)
                        break
                    p += i + 1
                elif n < 128:
                    t = None
                    break
                else:
                    p += 125  # the key (4 bytes) may straddle two reads
    if not t:
        return 0
    f = t.split()
    mul, div = f[5].split("/")
    # formula_index: pidtable.FORMULAS in order (a test checks)
    fs = "A A*256+B C*256+D A*2^24+B*2^16+C*256+D".split()
    return (f[1], f[2], int(f[3]), fs.index(f[4]), int(mul), int(div), int(f[6]))  # pyright: ignore[reportArgumentType]
