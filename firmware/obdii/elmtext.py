# The ELM327 reply messages (ELM327 data sheet, "Messages and Alerts") and what each means. A reply
# line matching one of them makes the query fail. Read by obdii.elm when a reply line may be one
# (loaded for the lookup, dropped again on the device).
#
# One text table, one message per row in the data sheet's order: the message (columns 0-17), how a
# reply line matches it (column 18: "." the line starts with it, "=" the line is it, "E" it starts
# with it and has ERROR in it: BUS INIT: ...OK is informational) and the meaning (from column 20).
# The first match wins: longer messages come before their prefixes (ERROR before ERR). One string
# per row (~70 bytes): loading the table needs no block bigger than that (one string of the whole
# table was 1 KB, a block a fragmented heap may not have); a row of more than 10 characters interns
# no name (separate short literals or dict keys would, for the life of the interpreter).
MESSAGES = (
    "NO DATA           . no ECU answered: PID not supported or ignition off",
    "UNABLE TO CONNECT . no OBD protocol found: ignition off, no ECU or wrong protocol",
    "CAN ERROR         . CAN bus error: not connected, wrong bit rate or bus fault",
    "BUS INIT          E K-line bus initialisation failed",
    "BUS ERROR         . bus fault: wiring or a generic bus error",
    "BUS BUSY          . bus too busy to send",
    "FB ERROR          . feedback error: wiring problem on the bus",
    "DATA ERROR        . reply had a data or checksum error",
    "<DATA ERROR       . reply had a data or checksum error",
    "<RX ERROR         . CAN receive error",
    "BUFFER FULL       . adapter buffer overflow",
    "STOPPED           . command interrupted (a byte arrived while the adapter was busy)",
    "LV RESET          . adapter reset on low voltage",
    "ACT ALERT         . adapter going to low power after inactivity",
    "LP ALERT          . adapter going to low power",
    "ERROR             = adapter error",
    "ERR               . adapter internal error (ERRnn)",
    "?                 = command not understood",
)

# The texts of obdii/elm.py's and obdii/obd.py's own errors (rare paths: text(n, ...) when one is raised,
# so they are no str objects of those resident modules)
TEXTS = (
    "command too long: %r",  # 0 elm.py query_raw
    "no '>' prompt in %d ms",  # 1 elm.py: TIMEOUT
    "reply longer than %d bytes",  # 2 elm.py: OVERFLOW
    "PID %02X (%s) needs %d data bytes, reply has %d",  # 3 obd.py decode
    "no 41 %02X in reply",  # 4 obd.py read_pid
    "no voltage in reply",  # 5 obd.py battery_voltage
)


def meaning(code):
    """What the ELM message `code` means ("adapter message" for one not in the table)."""
    for row in MESSAGES:
        if row[:18].rstrip() == code:
            return row[20:]
    return "adapter message"


def text(n, *a):
    """TEXTS[n] % a."""
    return TEXTS[n] % a


def error(text):
    """(code, meaning, row) of the first line of the cleaned reply `text` that is an ELM message, or
    None; row: its index in MESSAGES (0: NO DATA)."""
    for ln in text.split("\r"):
        for i in range(len(MESSAGES)):
            row = MESSAGES[i]
            m = row[:18].rstrip()
            how = ord(row[18:19])  # '.' 46, '=' 61, 'E' 69 (a slice: row[18] would intern the letter)
            if (ln == m) if how == 61 else (ln.startswith(m) and (how == 46 or "ERROR" in ln)):
                return m, row[20:], i
    return None
