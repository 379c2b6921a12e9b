# The ELM327 reply messages (ELM327 data sheet, "Messages and Alerts") and what each means. A reply
# line starting with one of ERRORS makes the query fail (those in EXACT only as the whole line; BUS
# INIT only with ERROR in the line). Read by obdii.elm when a reply line may be one (loaded for the
# lookup, dropped again on the device).
ERRORS = ("NO DATA", "UNABLE TO CONNECT", "CAN ERROR", "BUS INIT", "BUS ERROR", "BUS BUSY", "FB ERROR",
          "DATA ERROR", "<DATA ERROR", "<RX ERROR", "BUFFER FULL", "STOPPED", "LV RESET", "ACT ALERT",
          "LP ALERT", "ERROR", "ERR", "?")
EXACT = ("ERROR", "?")
MEANINGS = {
    "NO DATA": "no ECU answered: PID not supported or ignition off",
    "UNABLE TO CONNECT": "no OBD protocol found: ignition off, no ECU or wrong protocol",
    "CAN ERROR": "CAN bus error: not connected, wrong bit rate or bus fault",
    "BUS INIT": "K-line bus initialisation failed",
    "BUS ERROR": "bus fault: wiring or a generic bus error",
    "BUS BUSY": "bus too busy to send",
    "FB ERROR": "feedback error: wiring problem on the bus",
    "DATA ERROR": "reply had a data or checksum error",
    "<DATA ERROR": "reply had a data or checksum error",
    "<RX ERROR": "CAN receive error",
    "BUFFER FULL": "adapter buffer overflow",
    "STOPPED": "command interrupted (a byte arrived while the adapter was busy)",
    "LV RESET": "adapter reset on low voltage",
    "ACT ALERT": "adapter going to low power after inactivity",
    "LP ALERT": "adapter going to low power",
    "ERROR": "adapter error",
    "ERR": "adapter internal error (ERRnn)",
    "?": "command not understood",
}


def meaning(code):
    return MEANINGS.get(code, "adapter message")


def error(text):
    """(code, meaning) of the first line of the cleaned reply `text` that is an ELM message, or None."""
    for ln in text.split("\r"):
        for m in ERRORS:
            if m in EXACT:
                hit = ln == m
            else:
                hit = ln.startswith(m) and (m != "BUS INIT" or "ERROR" in ln)
            if hit:
                return m, meaning(m)
    return None
