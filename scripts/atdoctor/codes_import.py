"""Import the firmware's SIM7600 tables (firmware/modem/codes.py): the one place those facts live."""

import os
import sys

_FW = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware")
if _FW not in sys.path:
    sys.path.insert(0, _FW)

from modem import codes  # noqa: E402

__all__ = ["codes"]
