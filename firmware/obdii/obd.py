# OBD-II over the ELM327-style co-processor link: init, supported PIDs, PID values,
# battery voltage, VIN, DTCs, and the co-processor's own ATI / ATGPS commands.
#
#   obd = Obd(ElmLink(stream))
#   await obd.init()                 # ATZ (3 tries), ATE0, ATH0 (replies ignored), [ATSPx], PIDs
#   rpm = await obd.read_pid(0x0C)   # scaled per the PID table (decode below)
#   vin = await obd.vin(); codes = await obd.dtcs()   # "WP0ZZZ99ZTS390000", ["P0133"]
#
# Resident (the telelogger's every-sample path): read_pid, battery_voltage, is_supported. Their
# constructor's body is obdii/adapter.py's new() (run once). coproc_gnss (ATGPS, "$GNIFO,..."; the
# co-processor's GNSS source polls it every second) is obdii/gnifo.py's, bound to the Obd when the
# attribute is read (the source keeps it: that module lives with the source). The rest are methods all the same, reached through Obd.__getattr__: functions of a rare module taking the
# Obd first, imported for the call and dropped afterwards on the device:
#   obdii/adapter.py  init(protocol=0)   ATZ (up to 3 tries), ATE0, ATH0 (replies not checked, as in
#                                        the official FreematicsOBD init), [ATSP<protocol>, must answer
#                                        OK], then discover(); returns the number of supported PIDs;
#                                        ElmError when the adapter is silent (the ATZ timeout) or the
#                                        car does not answer
#                     discover()         the supported-PID bitmaps 0100, 0120, ... (chained while the
#                                        last bit is set), several ECUs OR-ed; the count
#                     supported_pids()   [pid, ...] of the bitmap
#                     read_pids([pid..], out=None)  (pid, value) of the PIDs that answered
#                     device_type(tries=3)  ATI: (devtype, model, text); "OBD2USART V1.4" -> (14, "B",
#                                        ...); (0, None, text) for an adapter that is not a Freematics
#                                        one; the last ElmError when it never answers
#                     gnss_on()          ATGPSON (reply not checked, as in gpsBegin), then 300 ms
#                     gnss_off()         ATGPSOFF (standby)
#                     low_power()        standby: ATR, 1 s, ATLP (enterLowPower); replies not checked
#                     wake(tries=30)     ATI until the co-processor answers; True when it did
#   obdii/diag.py     vin(tries=2)       VIN (0902): CAN multi-frame or one line per message (K-line)
#                     dtcs(mode=3)       stored (3), pending (7) or permanent (0x0A) DTCs as
#                                        ["P0133", ...]; NO DATA means none stored
#
# PID values (entry, decode; obdii.pids keeps these names for the config check, tools and tests): the
# table is obdii/pidtable.py (its format and the formulas there). A PID's row is read from that
# module's file on first use by obdii/pidrow.py (imported for the lookup, dropped again), then
# cached here (the telelogger reads a handful): only the configured PIDs' rows stay in RAM.
import sys

from core.errors import lookup
from obdii.elm import ElmError, eol, hex_bytes

_cache = {}  # pid -> entry, or 0 for a PID not in the table (at most 32: the configured ones)


def entry(pid):
    """(name, unit, nbytes, formula_index, mul, div, offset) for `pid`, or None. The row is read on a
    first use (obdii/pidrow.py, imported for the lookup and dropped again) and cached."""
    e = _cache.get(pid)
    if e is None:
        # (globals().get: a frozen image has no __file__; the reader then imports the table)
        e = lookup("obdii.pidrow", "entry", pid, globals().get("__file__"))
        if len(_cache) >= 32:
            _cache.clear()
        _cache[pid] = e
    return e or None


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
        raise ValueError(lookup("obdii.elmtext", "text", 3, pid, e[0], e[2], n))
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


class Obd:
    """errors: consecutive failed OBD reads (reset by a success; the telelogger treats
    >= 3 as "ECU off"); error_total: all failures since start. supported: the PID bitmap (bit
    for PID p at byte (p-1)>>3, mask 0x80>>((p-1)&7)); gnss_started: ATGPSON sent since the
    co-processor's last reset."""

    # set by the constructor's body (obdii/adapter.py): declared for the type checker only (as ElmLink's)
    if 1 - 1:
        from obdii.elm import ElmLink
    link: "ElmLink"
    short_ms: int
    long_ms: int
    reset_ms: int
    errors: int
    error_total: int
    supported: bytearray
    banner: "str | None"
    gnss_started: bool
    cmd: bytearray
    line: bytearray

    def __init__(self, *a, **k):  # (link, short_ms=SHORT_TIMEOUT_MS, long_ms=LONG_TIMEOUT_MS,
        # reset_ms=SHORT_TIMEOUT_MS): run once, so its body is obdii/adapter.py's (imported for the call)
        lookup("obdii.adapter", "new", self, a, k)

    def __getattr__(self, name):
        # the rare attributes by module (gnifo / diag / adapter) in one string: a tuple of names would be a
        # str object per name on the heap for as long as this module is loaded
        groups = ("coproc_gnss/vin dtcs/init discover supported_pids read_pids device_type gnss_on gnss_off"
                  " low_power wake").split("/")
        i = 0
        while name not in groups[i].split():
            i += 1
            if i == len(groups):
                raise AttributeError(name)
        if i == 0:  # coproc_gnss, bound now (obdii/gnifo.py): its source reads it once and polls it every second
            return lookup("obdii.gnifo", "bind", self)
        m = "obdii.diag" if i == 1 else "obdii.adapter"

        def fn(*a, **k):
            had = m in sys.modules  # (a caller that imported it for several calls forgets it itself)
            f = getattr(__import__(m, None, None, ("_",)), name)
            if not had and sys.implementation.name == "micropython":  # off the package too: its attribute
                from core.errors import forget  # keeps it alive (the function holds its module's globals for the call)

                forget(m)
            return f(self, *a, **k)

        return fn

    def is_supported(self, pid):
        if pid == 0:
            return True
        if not 0 < pid <= 0x100:
            return False
        return bool(self.supported[(pid - 1) >> 3] & (0x80 >> ((pid - 1) & 7)))

    async def read_pid(self, pid):
        """Current value of mode-01 `pid`, scaled per the PID table (decode; raw integer for PIDs not in the
        table). Raises ElmError: code "NO DATA" (unsupported PID), "TIMEOUT", "BAD REPLY"... A failure counts in
        errors and error_total (obdii/adapter.py and diag.py count theirs the same way)."""
        cmd = self.cmd
        cmd[2] = b"0123456789ABCDEF"[pid >> 4]
        cmd[3] = b"0123456789ABCDEF"[pid & 15]
        link = self.link
        try:
            n = await link.query_raw(cmd, self.short_ms)
            buf = link.buf
            line = self.line
            s = 0
            while s < n:
                e = eol(buf, s, n)
                k = hex_bytes(buf, s, e, line, 0)
                if k >= 2 and line[0] == 0x41 and line[1] == pid:
                    try:
                        v = decode(pid, line, 2, k - 2)
                    except ValueError as ex:
                        raise ElmError(cmd, link.text(), str(ex))
                    self.errors = 0
                    return v
                s = e + 1
            raise ElmError(cmd, link.text(), lookup("obdii.elmtext", "text", 4, pid))
        except ElmError:
            self.errors += 1
            self.error_total += 1
            raise

    async def battery_voltage(self):
        """ATRV: the adapter's supply (car battery) voltage in volts (the first line starting with
        a number: "12.6V")."""
        link = self.link
        n = await link.query_raw(b"ATRV", self.short_ms)
        buf = link.buf
        s = 0
        while s < n:
            e = eol(buf, s, n)
            c = buf[s]
            if c == 45 or 48 <= c <= 57:  # '-' or a digit
                i = s + 1
                while i < e and (buf[i] == 46 or 48 <= buf[i] <= 57):  # '.' or a digit
                    i += 1
                try:
                    return float(bytes(buf[s:i]))
                except ValueError:  # '-', '1.2.3': line noise, not a voltage
                    break
            s = e + 1
        raise ElmError(b"ATRV", link.text(), lookup("obdii.elmtext", "text", 5))
