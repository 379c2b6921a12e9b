# The adapter's set-up and the co-processor's own commands, the rare paths of obdii.obd.Obd:
# init (ATZ, ATE0, ATH0, ATSP, supported-PID discovery), identification (ATI -> devType -> ONE+
# model), its GNSS power (ATGPSON/ATGPSOFF) and low power (ATR + ATLP, ATI to wake), and the
# supported-PID list / several-PID read for tools. Each is an Obd method (obd.init(), ...: Obd's
# __getattr__ imports this module for the call and drops it from sys.modules afterwards on the device).
# Also the constructors of ElmLink and Obd (run once each: new).
from core.compat import DEFAULT_CLOCK
from obdii.elm import LONG_TIMEOUT_MS, SHORT_TIMEOUT_MS, ElmError, ElmLink, eol, hex_bytes

# Co-processor "ATI" version (e.g. "OBD2USART V1.4" -> devType 14) to ONE+ model
# (Freematics telelogger dashboard.js): the letter of devType 11, 12, ... 16 (bytes: a short str
# literal would be an interned name, and so would each letter of a dict).
COPROC_MODELS = b"ABBBHA"


def new(o, a, k):
    """ElmLink(*a, **k) or obdii.obd.Obd(*a, **k) initialised: their __init__ (run once, so not resident)."""
    (_link if isinstance(o, ElmLink) else _obd)(o, *a, **k)


def _link(self, stream, clock=None, bufsize=384, poll_ms=5, long_ms=LONG_TIMEOUT_MS, tap=None):
    self.stream = stream
    self.clock = clock or DEFAULT_CLOCK
    self.buf = bytearray(bufsize)
    self.rx = bytearray(64)
    self._tx = bytearray(48)
    self._txv = {}  # memoryviews of _tx per command length (a handful), so writes do not allocate
    self.poll_ms = poll_ms
    self.long_ms = long_ms  # the wait granted again when "..." (SEARCHING...) arrives
    self.n = 0  # length of the cleaned reply in buf
    self.tap = tap  # optional tap(cmd: bytes, raw_reply: bytes) after each exchange
    self._busy = False  # one query at a time (a flag: asyncio.Lock allocates per use)


def _obd(self, link, short_ms=SHORT_TIMEOUT_MS, long_ms=LONG_TIMEOUT_MS, reset_ms=SHORT_TIMEOUT_MS):
    self.link = link
    self.short_ms = short_ms
    self.long_ms = long_ms
    self.reset_ms = reset_ms
    self.errors = 0
    self.error_total = 0
    self.supported = bytearray(32)
    self.banner = None
    self.gnss_started = False
    self.cmd = bytearray(b"0100")  # the mode-01 query being sent
    self.line = bytearray(16)  # one reply line decoded


def parse_devtype(text):
    """Co-processor type from the ATI text: "OBD2USART V1.4" -> 14 (X.Y after the space
    following "OBD"); 0 when the text is not a Freematics co-processor's."""
    i = text.find("OBD")
    if i < 0:
        return 0
    i = text.find(" ", i)
    if i < 0:
        return 0
    n = len(text)
    while i < n and not text[i].isdigit():
        i += 1
    x = 0
    while i < n and text[i].isdigit():
        x = x * 10 + ord(text[i]) - 48
        i += 1
    if i + 1 >= n or text[i] != "." or not text[i + 1].isdigit():
        return 0
    return x * 10 + ord(text[i + 1]) - 48


async def device_type(obd, tries=3):
    """ATI on the co-processor, up to `tries` times (official getDeviceType: 3; a miss on
    devType 13 would open the modem on the wrong pins): (devtype, model, text). An adapter
    that answers but is not a Freematics one gives (0, None, its text); one that never answers
    raises the last error."""
    last = None
    for _ in range(tries):
        try:
            lines = await obd.link.query("ATI", obd.short_ms)
        except ElmError as e:
            last = e
            continue
        for ln in lines:
            t = parse_devtype(ln)
            if t:
                # (a slice, decoded: chr() would intern the letter)
                return t, COPROC_MODELS[t - 11 : t - 10].decode() if 11 <= t <= 16 else None, ln
        last = "\r".join(lines)
    if isinstance(last, str):
        return 0, None, last
    raise last if last is not None else ElmError("ATI", "", b"TIMEOUT", "ATI was not tried (tries = 0)")


async def init(obd, protocol=0):
    """Reset and configure the adapter, then discover the supported PIDs.
    Returns the number of supported PIDs; raises ElmError if the adapter or the
    car does not answer."""
    # Official FreematicsOBD init(): ATZ up to 3 times, then ATE0 and ATH0 whatever they
    # answer (the co-processor's ATZ reply and prompt timing vary). Only an adapter that
    # answers none of ATZ x3 and ATE0 is reported here, as the ATZ timeout.
    obd.gnss_started = False
    obd.banner = None
    silent = await reset(obd)
    for cmd in (b"ATE0", b"ATH0"):
        try:
            await obd.link.query(cmd, obd.short_ms)
        except ElmError as e:
            if e.code == "TIMEOUT" and silent is not None:
                raise silent
        silent = None
    if protocol:
        cmd = b"ATSP%X" % protocol
        if "OK" not in await obd.link.query(cmd, obd.short_ms):
            raise ElmError(cmd, obd.link.text(), "expected OK")
    return await discover(obd)


# (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
async def reset(obd):
    """init's ATZ, up to 3 times (a function of its own: each function's bytecode is one allocation)
    -> None when the adapter answered (something), else the last timeout."""
    silent = None
    for _ in range(3):
        try:
            lines = await obd.link.query(b"ATZ", obd.reset_ms)
            obd.banner = lines[-1] if lines else ""
            return None
        except ElmError as e:
            if e.code != "TIMEOUT":
                return None  # it answered (something): the reset happened
            silent = e
    return silent


async def discover(obd):
    """Read the supported-PID bitmaps 0100, 0120, ... (each chained while its last
    bit, PID base+0x20, is set). Replies from several ECUs are OR-ed."""
    sup = obd.supported
    for i in range(32):
        sup[i] = 0
    base = 0
    cmd = obd.cmd
    while base < 0x100:
        cmd[2] = b"0123456789ABCDEF"[base >> 4]  # "01" + the base PID in hex
        cmd[3] = 48
        try:
            n = await obd.link.query_raw(cmd, obd.long_ms)
            if not supported(obd, n, base):
                raise ElmError(cmd, obd.link.text(), "no 41 %02X bitmap in reply" % base)
        except ElmError:  # counted as Obd.read_pid counts a failed read (errors: consecutive, error_total: all)
            obd.errors += 1
            obd.error_total += 1
            raise
        if not (sup[(base >> 3) + 3] & 1):
            break
        base += 0x20
    obd.errors = 0
    return len(supported_pids(obd))


def supported(obd, n, base):
    """discover's reply of one bitmap (several ECUs: OR-ed into obd.supported) -> whether a line
    had it."""
    buf = obd.link.buf
    line = obd.line
    sup = obd.supported
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
    return got


def supported_pids(obd):
    """The PIDs the bitmap marks as supported, 1..0xFF."""
    return [p for p in range(1, 0x100) if obd.is_supported(p)]


async def read_pids(obd, pids, out=None):
    """Read each PID of `pids`; returns (and appends to `out`) (pid, value) pairs for the PIDs that
    answered. Failures are counted in obd.errors and skipped."""
    if out is None:
        out = []
    for pid in pids:
        try:
            out.append((pid, await obd.read_pid(pid)))
        except ElmError:
            pass
    return out


# -- co-processor GNSS (official gpsBegin / gpsGetData / gpsEnd) ---------------------------
async def gnss_on(obd):
    """ATGPSON: switch the co-processor's GNSS on (its reply is not checked, as in the official
    gpsBegin), then let it start (300 ms)."""
    try:
        await obd.link.query(b"ATGPSON", obd.short_ms)
    except ElmError:
        pass
    obd.gnss_started = True
    await (getattr(obd.link, "clock", None) or DEFAULT_CLOCK).sleep_ms(300)

async def gnss_off(obd):
    """ATGPSOFF: switch the co-processor's GNSS off (standby)."""
    obd.gnss_started = False
    await obd.link.query(b"ATGPSOFF", obd.short_ms)

async def low_power(obd):
    """Put the co-processor in low power for standby: ATR (reset), 1 s, ATLP. Replies are not
    checked (a co-processor going to sleep may not finish its answer)."""
    for cmd, pause in ((b"ATR", 1000), (b"ATLP", 0)):
        try:
            await obd.link.query(cmd, obd.short_ms)
        except ElmError:
            pass
        if pause:
            await (getattr(obd.link, "clock", None) or DEFAULT_CLOCK).sleep_ms(pause)
    obd.gnss_started = False

async def wake(obd, tries=30):
    """Leave low power: ATI until the co-processor answers (official: up to 30 times).
    Returns True when it answered; call init() afterwards for OBD."""
    obd.gnss_started = False
    for _ in range(tries):
        try:
            await obd.link.query("ATI", obd.short_ms)
            return True
        except ElmError:
            pass
    return False

