# DTC text for tools: dtc_str and dtc_code (its inverse), and the DTC and VIN decoders under their old
# module name. The decoders live in obdii/diag.py beside the reads that use them; the firmware never
# loads this module.
from obdii.diag import decode_dtcs, decode_vin  # noqa: F401 - re-exported


def dtc_str(code):
    """A 16-bit raw DTC -> "P0133" (dtc_code is the inverse; obdii.diag.decode_dtcs formats the same). SAE
    J2012: the two top bits select the system letter (P C B U), then a digit 0-3 and three hex digits: the
    low 14 bits as four hex digits."""
    return "%c%04X" % (b"PCBU"[code >> 14], code & 0x3FFF)


def dtc_code(text):
    """Inverse of dtc_str: "C0123" -> 0x4123 (the 16-bit raw code)."""
    if len(text) != 5:
        raise ValueError("DTC %r: expected a letter and 4 hex digits" % (text,))
    hi = "PCBU".find(text[0].upper())
    if hi < 0:
        raise ValueError("DTC %r: the letter must be one of P, C, B, U" % (text,))
    d = int(text[1], 16)
    if d > 3:
        raise ValueError("DTC %r: second character must be 0-3" % (text,))
    return (hi << 14) | (d << 12) | int(text[2:], 16)
