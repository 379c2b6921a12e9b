# OBD-II over the ELM327-style co-processor link: init, supported PIDs, PID values,
# battery voltage, VIN, DTCs, and the co-processor's own ATI / ATGPS commands.
#
#   obd = Obd(ElmLink(stream))
#   await obd.init()                 # ATZ (3 tries), ATE0, ATH0, [ATSPx], supported PIDs
#   rpm = await obd.read_pid(0x0C)   # scaled per obdii.pids.PIDS
#   vin = await obd.vin(); codes = await obd.dtcs()   # "WP0ZZZ99ZTS390000", ["P0133"]
from obdii import dtc, pids
from obdii.elm import (
    COPROC_MODELS,
    LONG_TIMEOUT_MS,
    SHORT_TIMEOUT_MS,
    ElmError,
    ElmNoData,
    ObdError,
    eol,
    hex_bytes,
    iso_tp_payload,
    parse_devtype,
)

_HEX = b"0123456789ABCDEF"


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
        self._cmd = bytearray(b"0100")
        self._line = bytearray(16)
        self._msg = bytearray(256)

    # -- set-up -------------------------------------------------------------------
    async def init(self, protocol=0):
        """Reset and configure the adapter, then discover the supported PIDs.
        Returns the number of supported PIDs; raises ElmError if the adapter or the
        car does not answer."""
        for attempt in range(3):
            try:
                lines = await self.link.query("ATZ", self.reset_ms)
                self.banner = lines[-1] if lines else ""
                break
            except ElmError:
                if attempt == 2:
                    raise
        await self._ok("ATE0")
        await self._ok("ATH0")
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

    async def device_type(self):
        """ATI on the co-processor: returns (devtype, model, text); "OBD2USART V1.4" ->
        (14, "B", ...). devtype 0 / model None when the adapter is not a Freematics one."""
        lines = await self.link.query("ATI", self.short_ms)
        for ln in lines:
            t = parse_devtype(ln)
            if t:
                return t, COPROC_MODELS.get(t), ln
        return 0, None, "\r".join(lines)

    async def coproc_gnss(self, timeout_ms=500):
        """ATGPS passthrough: the raw "$GNIFO,..." line from the co-processor's GNSS."""
        lines = await self.link.query("ATGPS", timeout_ms)
        for ln in lines:
            if ln.startswith("$GNIFO"):
                return ln
        raise ObdError("ATGPS", "\r".join(lines), "no $GNIFO line in reply")

    # -- mode 09 / mode 03 ------------------------------------------------------------
    async def vin(self, tries=2):
        """Vehicle identification number (0902): CAN multi-frame ("014" / "0: 49 02 01 ...")
        or single-line-per-message (K-line: "49 02 01 00 00 00 57" / "49 02 02 ...")."""
        last = None
        for _ in range(tries):
            try:
                n = await self.link.query_raw(b"0902", self.long_ms)
                m = self._payload(n, 0x49, 3)
                if m < 3 or self._msg[0] != 0x49 or self._msg[1] != 0x02:
                    raise ValueError("no 49 02 message in reply")
                v = dtc.decode_vin(self._msg, 3, m)
                self.errors = 0
                return v
            except ValueError as ex:
                last = ObdError("0902", self.link.text(), str(ex))
            except ElmError as ex:
                last = ex
            self._fail()
        if last is None:
            raise ObdError("0902", "", "no attempt made (tries=%d)" % tries)
        raise last

    async def dtcs(self, mode=3):
        """Stored (mode 3), pending (7) or permanent (0x0A) DTCs as ["P0133", ...].
        NO DATA means none stored."""
        cmd = ("%02X" % mode).encode()
        sid = 0x40 | mode
        try:
            n = await self.link.query_raw(cmd, self.long_ms)
        except ElmNoData:
            return []
        except ElmError:
            self._fail()
            raise
        out = []
        msg = self._msg
        m = iso_tp_payload(self.link.buf, n, sid, msg)
        if m >= 0:
            if m < 1 or msg[0] != sid:
                self._fail()
                raise ObdError(cmd.decode(), self.link.text(), "no %02X message in reply" % sid)
            return dtc.decode_dtcs(msg, 0, m, out)
        buf = self.link.buf
        s = 0
        found = False
        while s < n:  # one message per line (several ECUs, or legacy 3-DTC frames)
            e = eol(buf, s, n)
            k = hex_bytes(buf, s, e, msg, 0)
            if k >= 1 and msg[0] == sid:
                found = True
                dtc.decode_dtcs(msg, 0, k, out)
            s = e + 1
        if not found:
            self._fail()
            raise ObdError(cmd.decode(), self.link.text(), "no %02X message in reply" % sid)
        return out

    def _payload(self, n, sid, skip):
        """Assemble the reply in link.buf[:n] into self._msg; returns its length. Multi-
        frame forms go through iso_tp_payload; otherwise every line starting with `sid`
        is one message and the lines after the first lose their `skip` header bytes."""
        msg = self._msg
        m = iso_tp_payload(self.link.buf, n, sid, msg)
        if m >= 0:
            return m
        buf = self.link.buf
        line = self._line
        w = 0
        s = 0
        while s < n:
            e = eol(buf, s, n)
            k = hex_bytes(buf, s, e, line, 0)
            if k >= 1 and line[0] == sid:
                j = 0 if w == 0 else skip
                while j < k and w < len(msg):
                    msg[w] = line[j]
                    w += 1
                    j += 1
            s = e + 1
        return w
