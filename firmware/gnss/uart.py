# UartGnss, a GNSS module's NMEA on a UART, lives in gnss/nmea.py beside the parser it feeds (one
# module less on the heap); this name is kept for older imports and is not loaded by the firmware.
from gnss.nmea import UartGnss  # noqa: F401 - re-exported
