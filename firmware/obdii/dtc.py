# Diagnostic trouble codes (modes 03/07/0A) and VIN (mode 09 PID 02) decoding.
# Inputs are the assembled reply payload (bytes starting at the service byte), see
# obdii.elm.iso_tp_payload; nothing here talks to the link.

# SAE J2012: the two top bits of the first byte select the system letter.
DTC_LETTERS = "PCBU"
VIN_LEN = 17


def dtc_str(b1, b2):
    """Two DTC bytes -> "P0133" (letter, digit 0-3, three hex digits)."""
    return DTC_LETTERS[b1 >> 6] + "%d%X%02X" % ((b1 >> 4) & 3, b1 & 15, b2)


def dtc_code(text):
    """Inverse of dtc_str: "C0123" -> 0x4123 (the 16-bit raw code)."""
    if len(text) != 5:
        raise ValueError("DTC %r: expected a letter and 4 hex digits" % (text,))
    hi = DTC_LETTERS.find(text[0].upper())
    if hi < 0:
        raise ValueError("DTC %r: letter must be one of %s" % (text, DTC_LETTERS))
    d = int(text[1], 16)
    if d > 3:
        raise ValueError("DTC %r: second character must be 0-3" % (text,))
    return (hi << 14) | (d << 12) | int(text[2:], 16)


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
        b1 = payload[i]
        b2 = payload[i + 1]
        if b1 or b2:
            out.append(dtc_str(b1, b2))
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
    if len(chars) < VIN_LEN:
        raise ValueError("VIN has %d characters, expected %d: %r" % (len(chars), VIN_LEN, bytes(chars)))
    return bytes(chars[len(chars) - VIN_LEN :]).decode()
