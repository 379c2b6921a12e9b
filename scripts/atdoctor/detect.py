"""Is there an AT conversation at all?  An empty file, random bytes, an executable, prose, or a capture taken
at the wrong baud rate (garbage with a few AT-like fragments) must be said as such, never "healthy"."""

import re

from atdoctor.findings import Finding

TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}
FRAGMENT_RE = re.compile(rb"(?<![A-Za-z])(?:AT(?:[+&][A-Z]{2,})?|OK|ERROR|\+C[A-Z]{2,}:?|RDY)(?![a-z])")
MAGIC = ((b"\x7fELF", "an ELF executable"), (b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip file"),
         (b"\x89PNG", "a PNG image"), (b"%PDF", "a PDF document"))
MODULE_BAUD = 115200  # the ONE+ talks to its SIM7600 at 115200 8N1 (Freematics BEE_BAUDRATE)
MIN_ANSWERED = 3  # a capture with this many answered commands is a conversation, whatever noise it holds


def _answered(sessions):
    return sum(1 for s in sessions for x in s.conv.exchanges if x.final is not None or x.lines or x.results)


def input_verdict(raw, sessions, source=None):
    """A Finding of kind "input" when the file holds no AT conversation (or a garbled one), else None."""
    name = source or "<input>"
    answered = _answered(sessions)
    n = len(raw)
    text_ratio = (sum(1 for b in raw if b in TEXT_BYTES) / float(n)) if n else 1.0
    nul_ratio = raw.count(b"\x00") / float(n) if n else 0.0
    frags = FRAGMENT_RE.findall(raw)
    what = None
    title = "no AT conversation found in %s" % name
    fix = ("give the doctor the modem transcript: the firmware's AT log (at_log in the config, copied off the "
           "board) or a terminal capture of the module's UART/USB AT port")
    fid = "no-at-conversation"
    if not raw.strip():
        what = "the file is empty" if not n else "the file holds only white space"
    elif answered >= MIN_ANSWERED:
        return None
    elif any(raw.startswith(m) for m, _ in MAGIC):
        what = "it is %s, not a transcript" % next(d for m, d in MAGIC if raw.startswith(m))
    elif text_ratio < 0.75 and nul_ratio < 0.05 and len(frags) >= 3:
        fid = "wrong-baud-rate"
        title = "%s looks like a capture at the wrong baud rate" % name
        shown = ", ".join(sorted({f.decode("latin-1") for f in frags})[:6])
        what = ("%d%% of its %d bytes are not text, yet %d AT-like fragments (%s) show through: the serial port "
                "was read at a rate other than the module's" % (100 - int(text_ratio * 100), n, len(frags), shown))
        fix = ("capture again with the terminal at the module's rate (%d 8N1 on the ONE+; AT+IPR? tells a "
               "module's fixed rate)" % MODULE_BAUD)
    elif text_ratio < 0.75:
        what = "its %d bytes are binary data (%d%% not text) with no AT command or reply in them" % (
            n, 100 - int(text_ratio * 100))
    elif answered == 0:
        cmds = sum(1 for s in sessions for x in s.conv.exchanges)
        what = ("%d AT command line(s) but no reply from a modem" % cmds if cmds else
                "no AT command and no modem reply in its text")
    else:
        return None
    return Finding(fid, "error", title, what + ".", fix, [], kind="input",
                   data={"bytes": n, "text_ratio": round(text_ratio, 3), "fragments": len(frags),
                         "answered_commands": answered})
