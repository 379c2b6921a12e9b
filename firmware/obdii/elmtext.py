# What the ELM327 reply messages mean (ELM327 data sheet, "Messages and Alerts"); the messages
# themselves are obdii.elm.ERRORS. Read by obdii.elm.meaning() when an error happens.
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
