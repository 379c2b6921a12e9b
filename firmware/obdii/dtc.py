# DTC text for tools: dtc_code (the inverse of dtc_str), and the DTC and VIN decoders under their old
# module name. The decoders live in obdii/diag.py beside the reads that use them; the firmware never
# loads this module.
from obdii.diag import decode_dtcs, decode_vin, dtc_str  # noqa: F401 - re-exported


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
