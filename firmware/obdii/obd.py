# OBD-II over the ELM327-style co-processor link: init, supported PIDs, PID values,
# battery voltage, VIN, DTCs, and the co-processor's own ATI / ATGPS commands.
#
#   obd = Obd(ElmLink(stream))
#   await obd.init()                 # ATZ (3 tries), ATE0, ATH0 (replies ignored), [ATSPx], PIDs
#   rpm = await obd.read_pid(0x0C)   # scaled per obdii.pids.PIDS
#   vin = await obd.vin(); codes = await obd.dtcs()   # "WP0ZZZ99ZTS390000", ["P0133"]
import sys

from core.compat import DEFAULT_CLOCK
from obdii import pids
from obdii.elm import LONG_TIMEOUT_MS, SHORT_TIMEOUT_MS, ElmError, ElmTimeout, ObdError, eol, hex_bytes

_HEX = b"0123456789ABCDEF"
_DROP = sys.implementation.name == "micropython"  # rare-path modules leave the heap after use


def _rare(name):
    """Import a rarely used module (VIN/DTC, ATI identification) for one call."""
    return __import__(name, None, None, ("_",))


def _done(name):
    if _DROP:
        sys.modules.pop(name, None)


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

    # -- set-up -------------------------------------------------------------------
    async def init(self, protocol=0):
        """Reset and configure the adapter, then discover the supported PIDs.
        Returns the number of supported PIDs; raises ElmError if the adapter or the
        car does not answer."""
        # Official FreematicsOBD init(): ATZ up to 3 times, then ATE0 and ATH0 whatever they
        # answer (the co-processor's ATZ reply and prompt timing vary). Only an adapter that
        # answers none of ATZ x3 and ATE0 is reported here, as the ATZ timeout.
        self.gnss_started = False
        self.banner = None
        silent = None
        for _ in range(3):
            try:
                lines = await self.link.query("ATZ", self.reset_ms)
                self.banner = lines[-1] if lines else ""
                silent = None
                break
            except ElmTimeout as e:
                silent = e
            except ElmError:
                silent = None  # it answered (something): the reset happened
                break
        for cmd in ("ATE0", "ATH0"):
            try:
                await self.link.query(cmd, self.short_ms)
            except ElmTimeout:
                if silent is not None:
                    raise silent
            except ElmError:
                pass
            silent = None
        if protocol:
            await self._ok("ATSP%X" % protocol)
        return await self.discover()

    async def _ok(self, cmd):
        lines = await self.link.query(cmd, self.short_ms)
        if "OK" not in lines:
            raise ObdError(cmd, "\r".join(lines), "expected OK")

    async def discover(self):
        """Read the supported-PID bitmaps 0100, 0120, ... (each chained while its last
        bit, PID base+0x20, is set). Replies from several ECUs are OR-ed."""
        sup = self.supported
        for i in range(32):
            sup[i] = 0
        base = 0
        while base < 0x100:
            n = await self._query_pid(base, self.long_ms)
            buf = self.link.buf
            line = self._line
            got = False
            s = 0
            while s < n:
                e = eol(buf, s, n)
                k = hex_bytes(buf, s, e, line, 0)
                if k >= 6 and line[0] == 0x41 and line[1] == base:
                    for j in range(4):
                        sup[(base >> 3) + j] |= line[2 + j]
                    got = True
                s = e + 1
            if not got:
                self._fail()
                raise ObdError(self._cmd.decode(), self.link.text(), "no 41 %02X bitmap in reply" % base)
            if not (sup[(base >> 3) + 3] & 1):
                break
            base += 0x20
        self.errors = 0
        return len(self.supported_pids())

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

    async def device_type(self, tries=3):
        """ATI on the co-processor (up to `tries` times): returns (devtype, model, text);
        "OBD2USART V1.4" -> (14, "B", ...). devtype 0 / model None when the adapter is not a
        Freematics one; raises the last ElmError when it never answers."""
        try:
            return await _rare("obdii.ident").device_type(self, tries)
        finally:
            _done("obdii.ident")

    def _sleep(self, ms):
        return (getattr(self.link, "clock", None) or DEFAULT_CLOCK).sleep_ms(ms)

    # -- co-processor GNSS (official gpsBegin / gpsGetData / gpsEnd) ---------------------------
    async def gnss_on(self):
        """ATGPSON: switch the co-processor's GNSS on (its reply is not checked, as in the official
        gpsBegin), then let it start (300 ms)."""
        try:
            await self.link.query("ATGPSON", self.short_ms)
        except ElmError:
            pass
        self.gnss_started = True
        await self._sleep(300)

    async def gnss_off(self):
        """ATGPSOFF: switch the co-processor's GNSS off (standby)."""
        self.gnss_started = False
        await self.link.query("ATGPSOFF", self.short_ms)

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

    # -- standby (official FreematicsESP32 enterLowPower / leaveLowPower) ------------------------
    async def low_power(self):
        """Put the co-processor in low power for standby: ATR (reset), 1 s, ATLP. Replies are not
        checked (a co-processor going to sleep may not finish its answer)."""
        for cmd, pause in (("ATR", 1000), ("ATLP", 0)):
            try:
                await self.link.query(cmd, self.short_ms)
            except ElmError:
                pass
            if pause:
                await self._sleep(pause)
        self.gnss_started = False

    async def wake(self, tries=30):
        """Leave low power: ATI until the co-processor answers (official: up to 30 times).
        Returns True when it answered; call init() afterwards for OBD."""
        self.gnss_started = False
        for _ in range(tries):
            try:
                await self.link.query("ATI", self.short_ms)
                return True
            except ElmError:
                pass
        return False

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
