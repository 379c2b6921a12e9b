# OBD-II over the ELM327-style co-processor link: init, supported PIDs, PID values,
# battery voltage, VIN, DTCs, and the co-processor's own ATI / ATGPS commands.
#
#   obd = Obd(ElmLink(stream))
#   await obd.init()                 # ATZ (3 tries), ATE0, ATH0 (replies ignored), [ATSPx], PIDs
#   rpm = await obd.read_pid(0x0C)   # scaled per obdii.pids.PIDS
#   vin = await obd.vin(); codes = await obd.dtcs()   # "WP0ZZZ99ZTS390000", ["P0133"]
import sys

from obdii import pids
from obdii.elm import LONG_TIMEOUT_MS, SHORT_TIMEOUT_MS, ElmError, ObdError, eol, hex_bytes

_HEX = b"0123456789ABCDEF"
_DROP = sys.implementation.name == "micropython"  # rare-path modules leave the heap after use


def _rare(name):
    """Import a rarely used module (VIN/DTC, ATI identification) for one call."""
    return __import__(name, None, None, ("_",))


def _done(name):
    if _DROP:  # off the package too: a package attribute alone keeps the module alive
        from core.unload import forget

        forget(name)


class Obd:
    """errors: consecutive failed OBD reads (reset by a success; the telelogger treats
    >= 3 as "ECU off"); error_total: all failures since start."""

    def __init__(self, link, short_ms=SHORT_TIMEOUT_MS, long_ms=LONG_TIMEOUT_MS, reset_ms=SHORT_TIMEOUT_MS):
        self.link = link
        self.short_ms = short_ms
        self.long_ms = long_ms
        self.reset_ms = reset_ms
        self.errors = 0
        self.error_total = 0
        self.supported = bytearray(32)  # bit for PID p (1..0x100) at byte (p-1)>>3, mask 0x80>>((p-1)&7)
        self.banner = None
        self.gnss_started = False  # the co-processor's GNSS was switched on (ATGPSON) since its reset
        self._cmd = bytearray(b"0100")
        self._line = bytearray(16)

    def is_supported(self, pid):
        if pid == 0:
            return True
        if not 0 < pid <= 0x100:
            return False
        return bool(self.supported[(pid - 1) >> 3] & (0x80 >> ((pid - 1) & 7)))

    def supported_pids(self):
        return [p for p in range(1, 0x100) if self.is_supported(p)]

    # -- PIDs -----------------------------------------------------------------------
    async def _query_pid(self, pid, timeout_ms):
        cmd = self._pid_cmd(pid)
        try:
            return await self.link.query_raw(cmd, timeout_ms)
        except ElmError:
            self._fail()
            raise

    def _pid_cmd(self, pid):
        cmd = self._cmd
        cmd[2] = _HEX[pid >> 4]
        cmd[3] = _HEX[pid & 15]
        return cmd

    def _fail(self):
        self.errors += 1
        self.error_total += 1

    async def read_pid(self, pid):
        """Current value of mode-01 `pid`, scaled per pids.PIDS (raw integer for PIDs not
        in the table). Raises ElmNoData (unsupported PID), ElmTimeout, ObdError."""
        try:
            n = await self.link.query_raw(self._pid_cmd(pid), self.short_ms)
        except ElmError:
            self._fail()
            raise
        buf = self.link.buf
        line = self._line
        s = 0
        while s < n:
            e = eol(buf, s, n)
            k = hex_bytes(buf, s, e, line, 0)
            if k >= 2 and line[0] == 0x41 and line[1] == pid:
                try:
                    v = pids.decode(pid, line, 2, k - 2)
                except ValueError as ex:
                    self._fail()
                    raise ObdError(self._cmd.decode(), self.link.text(), str(ex))
                self.errors = 0
                return v
            s = e + 1
        self._fail()
        raise ObdError(self._cmd.decode(), self.link.text(), "no 41 %02X in reply" % pid)

    async def read_pids(self, pid_list, out=None):
        """Read each PID; returns (and appends to `out`) (pid, value) pairs for the PIDs
        that answered. Failures are counted in .errors and skipped."""
        if out is None:
            out = []
        for pid in pid_list:
            try:
                out.append((pid, await self.read_pid(pid)))
            except ElmError:
                pass
        return out

    # -- adapter ----------------------------------------------------------------------
    async def battery_voltage(self):
        """ATRV: the adapter's supply (car battery) voltage in volts."""
        lines = await self.link.query("ATRV", self.short_ms)
        for ln in lines:
            if ln and (ln[0] == "-" or "0" <= ln[0] <= "9"):
                i = 1
                while i < len(ln) and (ln[i] == "." or "0" <= ln[i] <= "9"):
                    i += 1
                try:
                    return float(ln[:i])
                except ValueError:  # '-', '1.2.3': line noise, not a voltage
                    break
        raise ObdError("ATRV", "\r".join(lines), "no voltage in reply")

    # -- set-up and the co-processor's own commands (obdii/adapter.py, loaded for the call) ---
    async def _adapter(self, fn, *args):
        try:
            return await getattr(_rare("obdii.adapter"), fn)(self, *args)
        finally:
            _done("obdii.adapter")

    def init(self, protocol=0):
        """ATZ (up to 3 tries), ATE0, ATH0 (their replies are not checked, as in the official
        FreematicsOBD init), [ATSP<protocol>, must answer OK], then discover(). Returns the number of
        supported PIDs; raises ElmError when the adapter is silent (as the ATZ timeout) or the car
        does not answer."""
        return self._adapter("init", protocol)

    def discover(self):
        """Read the supported-PID bitmaps 0100, 0120, ... (each chained while its last bit is
        set); replies from several ECUs are OR-ed. Returns the number of supported PIDs."""
        return self._adapter("discover")

    def device_type(self, tries=3):
        """ATI on the co-processor (up to `tries` times): (devtype, model, text); "OBD2USART
        V1.4" -> (14, "B", ...); (0, None, text) for an adapter that is not a Freematics one;
        raises the last ElmError when it never answers."""
        return self._adapter("device_type", tries)

    def gnss_on(self):
        """ATGPSON (reply not checked, as in the official gpsBegin), then 300 ms to start."""
        return self._adapter("gnss_on")

    def gnss_off(self):
        """ATGPSOFF: the co-processor's GNSS off (standby)."""
        return self._adapter("gnss_off")

    def low_power(self):
        """Standby: ATR (reset), 1 s, ATLP (official enterLowPower); replies not checked."""
        return self._adapter("low_power")

    def wake(self, tries=30):
        """Leave low power: ATI until the co-processor answers (official: up to 30 times); True
        when it answered. Call init() afterwards for OBD."""
        return self._adapter("wake", tries)

    async def coproc_gnss(self, timeout_ms=500):
        """ATGPS: the raw "$GNIFO,..." line from the co-processor's GNSS, switched on first
        (gnss_on) after every reset of the co-processor."""
        if not self.gnss_started:
            await self.gnss_on()
        lines = await self.link.query("ATGPS", timeout_ms)
        for ln in lines:
            if ln.startswith("$GNIFO"):
                return ln
        raise ObdError("ATGPS", "\r".join(lines), "no $GNIFO line in reply")

    # -- mode 09 / mode 03 (obdii/diag.py) ------------------------------------------------------
    async def vin(self, tries=2):
        """Vehicle identification number (0902): CAN multi-frame ("014" / "0: 49 02 01 ...")
        or single-line-per-message (K-line: "49 02 01 00 00 00 57" / "49 02 02 ...")."""
        try:
            return await _rare("obdii.diag").vin(self, tries)
        finally:
            _done("obdii.diag")
            _done("obdii.dtc")

    async def dtcs(self, mode=3):
        """Stored (mode 3), pending (7) or permanent (0x0A) DTCs as ["P0133", ...].
        NO DATA means none stored."""
        try:
            return await _rare("obdii.diag").dtcs(self, mode)
        finally:
            _done("obdii.diag")
            _done("obdii.dtc")
