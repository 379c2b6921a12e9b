# OBD-II diagnostics, the rare path: VIN (mode 09 PID 02) and DTCs (modes 03/07/0A), with the
# ISO-TP multi-frame reassembly they need and the decoding of their bytes. Obd.vin()/dtcs() import
# this for the call (dropped from sys.modules afterwards on the device); obdii/dtc.py keeps the
# decoders' old module name for tools, with dtc_code (text -> raw code: tools only).
# (few module globals: its dict table is one block, 17 slots for up to 17 names; what one function alone
# uses is imported there)
from core.compat import const
from obdii.elm import eol, hex_bytes

# an assembled message is made as long as its reply allows, at most one byte per two characters of the text
# (bytearray(n // 2 + 1): 3 bytes for "43 00", ~33 for a CAN VIN, 193 for a full 384-byte reply buffer), not
# 256 bytes per read on the heap of the VIN/DTC check, whose highest peak it was part of
_VIN_LEN = const(17)


# -- decoding (inputs: the assembled reply payload, bytes from the service byte on) -----------------
def dtc_str(code):
    """A 16-bit raw DTC -> "P0133" (obdii.dtc.dtc_code is the inverse). SAE J2012: the two top bits
    select the system letter (P C B U), then a digit 0-3 and three hex digits: the low 14 bits as
    four hex digits."""
    return "%c%04X" % (b"PCBU"[code >> 14], code & 0x3FFF)


def decode_dtcs(payload, off, end, out=None):
    """Append the DTCs in payload[off:end] (payload[off] is the service byte 0x43/0x47/0x4A)
    to `out` (a list, created when None) and return it.

    ISO 15765-4 (CAN) replies carry a count byte after the service byte, so the
    remainder has odd length (1 + 2*count); legacy protocols (and the elm327-emulator)
    send pairs only (even length, 00 00 padding). 0000 pairs are padding and skipped.
    """
    if out is None:
        out = []
    i = off + 1
    rest = end - i
    if rest & 1:
        count = payload[i]
        i += 1
        if count * 2 < rest - 1:
            end = i + count * 2
    while i + 1 < end:
        code = (payload[i] << 8) | payload[i + 1]
        if code:
            out.append(dtc_str(code))
        i += 2
    return out


def decode_vin(payload, off, end):
    """VIN characters in payload[off:end] (the bytes after "49 02 01"). NUL and other
    non-printable pad bytes are dropped; returns the last 17 characters. Raises
    ValueError when fewer than 17 printable characters are present."""
    chars = bytearray()
    for i in range(off, end):
        c = payload[i]
        if 0x20 < c < 0x7F:
            chars.append(c)
    if len(chars) < _VIN_LEN:
        raise ValueError("VIN has %d characters, expected %d: %r" % (len(chars), _VIN_LEN, bytes(chars)))
    return bytes(chars[len(chars) - _VIN_LEN :]).decode()


# -- the link --------------------------------------------------------------------------------------
def iso_tp_payload(buf, n, sid, out):
    """Reassemble a multi-frame (ISO-TP) reply shown with headers off. Two forms:
      ELM327:             "014" / "0: 49 02 01 57 50 30" / "1: ..." (length line + "N:" lines)
      elm327-emulator:    "0B 43 01 33 41 23 03" / "00 80 01 D2 AB 00 00" (length byte first)
    Writes the message bytes (from the service byte, padding cut to the length) into out
    and returns their count; returns -1 if the reply is not in a multi-frame form. The ELM327 form
    here, the emulator's (no line has "N:") in compact."""
    total = -1
    w = 0
    s = 0
    colon = False
    while s < n:
        e = eol(buf, s, n)
        c = s
        while c < e and buf[c] != 58:  # ':'
            c += 1
        if c < e:
            colon = True
            k = hex_bytes(buf, c + 1, e, out, w)
            if k < 0:
                return -1
            w += k
        elif w == 0 and total < 0 and e - s <= 3:
            total = count(buf, s, e)
            if total < 0:
                return -1
        s = e + 1
    if not colon:
        return compact(buf, n, sid, out)
    if 0 <= total < w:
        w = total
    return w


# (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
def count(buf, s, e):
    """iso_tp_payload's length line (hex digits, "014") -> the length, or -1 (not hex). (Functions of
    their own: each function's bytecode is one allocation.)"""
    from core.compat import hexval

    total = 0
    for i in range(s, e):
        v = hexval(buf[i])
        if v < 0:
            return -1
        total = (total << 4) | v
    return total


def compact(buf, n, sid, out):
    """iso_tp_payload's emulator form: the first line starts with a length byte followed by the
    service byte -> the count, or -1."""
    e = eol(buf, 0, n)
    if e >= n:
        return -1
    k = hex_bytes(buf, 0, e, out, 0)
    if k < 2 or out[0] == sid or out[1] != sid:
        return -1
    total = out[0]
    for i in range(1, k):
        out[i - 1] = out[i]
    w = k - 1
    s = e + 1
    while s < n:
        e = eol(buf, s, n)
        k = hex_bytes(buf, s, e, out, w)
        if k < 0:
            return -1
        w += k
        s = e + 1
    if total < w:
        w = total
    return w


async def vin(obd, tries=2):
    """Vehicle identification number (0902): CAN multi-frame ("014" / "0: 49 02 01 ...")
    or single-line-per-message (K-line: "49 02 01 00 00 00 57" / "49 02 02 ...": every line
    starting with 49 is one message, the lines after the first lose their 3 header bytes)."""
    from obdii.elm import ElmError

    last = None
    for _ in range(tries):
        try:
            n = await obd.link.query_raw(b"0902", obd.long_ms)
            v = _vin(obd, n, bytearray(n // 2 + 1))
            obd.errors = 0
            return v
        except ElmError as ex:
            last = ex
        _fail(obd)
    if last is None:
        raise ElmError(b"0902", "", "no attempt made (tries=%d)" % tries)
    raise last


def _vin(obd, n, msg):
    """vin's reply (n bytes of obd.link.buf) -> the VIN; raises ElmError. (Functions of their own:
    each function's bytecode is one allocation.)"""
    from obdii.elm import ElmError

    buf = obd.link.buf
    m = iso_tp_payload(buf, n, 0x49, msg)
    if m < 0:  # one message per line
        m = lines(buf, n, obd.line, msg)
    try:
        if m < 3 or msg[0] != 0x49 or msg[1] != 0x02:
            raise ValueError("no 49 02 message in reply")
        return decode_vin(msg, 3, m)
    except ValueError as ex:
        raise ElmError(b"0902", obd.link.text(), str(ex))


def lines(buf, n, line, msg):
    """The K-line form: the messages (lines starting 49) joined into msg, the lines after the first
    without their 3 header bytes -> the length."""
    m = 0
    s = 0
    while s < n:
        e = eol(buf, s, n)
        k = hex_bytes(buf, s, e, line, 0)
        if k >= 1 and line[0] == 0x49:
            j = 0 if m == 0 else 3
            while j < k and m < len(msg):
                msg[m] = line[j]
                m += 1
                j += 1
        s = e + 1
    return m


async def dtcs(obd, mode=3):
    """Stored (mode 3), pending (7) or permanent (0x0A) DTCs as ["P0133", ...].
    NO DATA means none stored."""
    from obdii.elm import ElmError

    cmd = ("%02X" % mode).encode()
    try:
        n = await obd.link.query_raw(cmd, obd.long_ms)
    except ElmError as e:
        if e.code == "NO DATA":
            return []
        _fail(obd)
        raise
    return decode(obd, n, cmd, 0x40 | mode)


def decode(obd, n, cmd, sid):
    """dtcs' reply (n bytes of obd.link.buf) -> the codes; raises ElmError (a function of its own)."""
    out = []
    msg = bytearray(n // 2 + 1)
    m = iso_tp_payload(obd.link.buf, n, sid, msg)
    # a multi-frame reply must be a sid message; else one message per line, one of them a sid one
    if not (m >= 1 and msg[0] == sid if m >= 0 else split(obd.link.buf, n, sid, msg, out)):
        from obdii.elm import ElmError

        _fail(obd)
        raise ElmError(cmd, obd.link.text(), "no %02X message in reply" % sid)
    return decode_dtcs(msg, 0, m, out) if m >= 0 else out


def split(buf, n, sid, msg, out):
    """dtcs' one message per line (several ECUs, or legacy 3-DTC frames): their codes appended to
    out -> whether a line was a sid message."""
    s = 0
    found = False
    while s < n:
        e = eol(buf, s, n)
        k = hex_bytes(buf, s, e, msg, 0)
        if k >= 1 and msg[0] == sid:
            found = True
            decode_dtcs(msg, 0, k, out)
        s = e + 1
    return found


def _fail(obd):
    """Count a failed OBD read, as Obd.read_pid does (errors: consecutive, error_total: all)."""
    obd.errors += 1
    obd.error_total += 1
