# OBD-II mode 01 PIDs as data: the one place where names, units, sizes and scaling live.
#
# One line per PID:  PID name unit bytes formula mul/div offset
#   formula picks the reply bytes that make the raw integer (A is the first data byte
#   after "41 <pid>", B the second, ...); then  value = raw * mul / div + offset
#   (an int when div is 1, else a float).
# Formulas are SAE J1979 / ISO 15031-5 ones, fractions kept exact (100/255, 8/65536).
# Bitmap ("supported PIDs") and bit-field PIDs (01, 03, 12, 13, 1C, 1D, 1E) are not
# scaled values and are not listed; decode() returns their raw integer.
#
# The table is one string in obdii/pidtable.py (with the formulas and the row parser), imported only
# to look a row up (and dropped from sys.modules afterwards on the device); a PID's row is parsed on
# first use and cached (the telelogger reads a handful), so the table itself does not stay in RAM.
import sys

_cache = {}  # pid -> entry, or 0 for a PID not in the table (at most 32: the configured ones)


def entry(pid):
    """(name, unit, nbytes, formula_index, mul, div, offset) for `pid`, or None."""
    e = _cache.get(pid)
    if e is None:
        from obdii import pidtable

        if sys.implementation.name == "micropython":  # off the package too: its attribute keeps it alive
            from core.unload import forget

            forget("obdii.pidtable")
        e = pidtable.row(pid) or 0
        if len(_cache) >= 32:
            _cache.clear()
        _cache[pid] = e
    return e or None


def info(pid):
    """(name, unit, nbytes, formula text, mul, div, offset) or None (tools and tests)."""
    e = entry(pid)
    if e is None:
        return None
    from obdii import pidtable  # (tools: the table module stays imported)

    return (e[0], e[1], e[2], pidtable.FORMULAS[e[3]], e[4], e[5], e[6])


def decode(pid, data, off, n):
    """Scale the reply bytes data[off:off+n] (the bytes after "41 <pid>") of `pid`.

    Listed PIDs need at least their table size; unlisted PIDs return the big-endian raw
    integer of the available bytes. Raises ValueError on a short reply."""
    e = entry(pid)
    if e is None:
        raw = 0
        for i in range(n):
            raw = (raw << 8) | data[off + i]
        return raw
    if n < e[2]:
        raise ValueError("PID %02X (%s) needs %d data bytes, reply has %d" % (pid, e[0], e[2], n))
    kind = e[3]
    if kind == 0:
        raw = data[off]
    elif kind == 1:
        raw = (data[off] << 8) | data[off + 1]
    elif kind == 2:
        raw = (data[off + 2] << 8) | data[off + 3]
    else:
        raw = (data[off] << 24) + (data[off + 1] << 16) + (data[off + 2] << 8) + data[off + 3]
    if e[5] == 1:
        return raw * e[4] + e[6]
    if e[6]:
        return raw * e[4] / e[5] + e[6]
    return raw * e[4] / e[5]
