# OBD-II mode 01 PIDs as data: names, units, sizes and scaling. The table is obdii/pidtable.py (one
# row per PID, its format there; obdii.obd reads the rows from its file); entry() and decode() (the row of a PID, cached, and the scaling of
# a reply) are obdii.obd's, beside Obd.read_pid, their one caller on the device (one module less
# resident). This module keeps the names for the config check, tools and tests, and adds info().
from obdii.obd import decode, entry  # noqa: F401 - re-exported


def info(pid):
    """(name, unit, nbytes, formula text, mul, div, offset) or None (tools and tests)."""
    e = entry(pid)
    if e is None:
        return None
    from obdii import pidtable  # (tools: the table module stays imported)

    return (e[0], e[1], e[2], pidtable.FORMULAS[e[3]], e[4], e[5], e[6])
