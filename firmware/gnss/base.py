# GnssSource, the contract of every GNSS source, lives in gnss/fix.py beside the Fix it shares (one
# module less on the heap); this name is kept for older imports and is not loaded by the firmware.
from gnss.fix import GnssSource  # noqa: F401 - re-exported
