# The DTC and VIN decoders live in obdii/diag.py beside the reads that use them (one module less on
# the heap and fewer interned names); this name is kept for tools and is not loaded by the firmware.
from obdii.diag import decode_dtcs, decode_vin, dtc_code, dtc_str  # noqa: F401 - re-exported
