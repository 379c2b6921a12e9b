# What the AT engine hands back: the Reply of a command, the exceptions of a failed one (all
# ATError: `.cmd` redacted, `.code`, `.meaning`, `.lines`), the URC prefixes the engine knows
# without a handler, and the redaction of credentials in command lines. at.engine re-exports every
# name here (`from at.engine import ATTimeout` keeps working).
# Boot-time URCs the module prints unasked (seed thread; LilyGO T-SIM7600X#100)
import asyncio

BOOT_URCS = ("RDY", "+CPIN: READY", "SMS DONE", "PB DONE")

# Lines the module prints unasked that the engine recognises even with no handler registered,
# so they never pollute a reply in flight (T-SIM7600X#100, TinyGSM#309, [M] ch.16 URCs).
UNSOLICITED = BOOT_URCS + (
    "+CGEV:",
    "+CIPEVENT:",
    "+CMQTTNONET",
    "+CMQTTCONNLOST:",
    "+CMQTTPING:",
    "+CPIN: NOT READY",
)

# Commands whose arguments from the k-th on (0-based) are credentials: (prefix, k).
# AT+CMQTTCONNECT=<idx>,"<addr>",<keepalive>,<clean>[,"<user>"[,"<pass>"]]; AT+CGAUTH=<cid>,
# <type>,"<passwd>","<user>" (the order differs between manuals: both are hidden); AT+CPIN="<pin>"[,"<new>"].
SECRET_ARGS = (("AT+CMQTTCONNECT=", 4), ("AT+CGAUTH=", 2), ("AT+CPIN=", 0))
REDACTED = "<redacted>"


def secret_at(cmd):
    """Index in cmd where its credentials start, or -1."""
    for p, k in SECRET_ARGS:
        if cmd.startswith(p):
            i = len(p)
            n = 0
            q = False
            while n < k and i < len(cmd):
                c = cmd[i]
                if c == '"':
                    q = not q
                elif c == "," and not q:
                    n += 1
                i += 1
            return i if n == k and i < len(cmd) else -1
    return -1


def redact(cmd):
    """cmd with its credentials replaced by '<redacted>' (unchanged when it carries none)."""
    if not isinstance(cmd, str):
        return cmd
    i = secret_at(cmd)
    return cmd if i < 0 else cmd[:i] + REDACTED


class ATError(Exception):
    """Base of the engine's errors: `cmd` (the command line), `code` (int or text or None),
    `meaning` (what the code means), `lines` (intermediate lines received)."""

    def __init__(self, cmd, code=None, meaning=None, lines=None, msg=None):
        cmd = redact(cmd)
        super().__init__(cmd)
        self.cmd = cmd
        self.code = code
        self.meaning = meaning
        self.lines = lines or []
        self.msg = msg

    def __str__(self):
        s = "%s: %s" % (self.cmd, self.msg or type(self).__name__)
        if self.code is not None:
            s += " (error %s: %s)" % (self.code, self.meaning)
        return s


class ATTimeout(ATError):
    pass


class ATCommandError(ATError):
    """ERROR final result (code/meaning from a '+CMD: <idx>,<err>' or '+IP ERROR:' line when the
    module sent one)."""


class CMEError(ATError):
    pass


class CMSError(ATError):
    pass


class ATNoPrompt(ATError):
    """A data-entry command completed before its '>' prompt: the data was NOT written."""


class ModemRebooted(ATError):
    """The module printed RDY (it rebooted) while a command or a result was pending."""


class Reply:
    def __init__(self, cmd):
        self.cmd = cmd
        self.lines = []
        self.final = None
        self.result = None
        self.echo = False

    def value(self, prefix):
        """Text after `prefix` of the first intermediate line that starts with it, stripped."""
        for ln in self.lines:
            if ln.startswith(prefix):
                return ln[len(prefix) :].strip()
        return None



def response_prefix(cmd):
    """'AT+CSQ' -> '+CSQ:'; 'AT+CMQTTTOPIC=0,5' -> '+CMQTTTOPIC:'; 'ATI' -> None."""
    if not cmd.startswith("AT+") and not cmd.startswith("at+"):
        return None
    end = len(cmd)
    for ch in "=?":
        k = cmd.find(ch)
        if 0 < k < end:
            end = k
    return cmd[2:end].upper() + ":"


def default_meaning(prefix, code):
    """Meaning of an error code reported on a '+CMD:' line. The engine knows no command family's
    table; a driver installs its own (modem.cmqtt sets ATEngine.meaning for +CMQTT codes)."""
    return "error %s" % code


class Waiter:
    """A deferred result or awaited URC: the first line starting with `prefix`."""

    def __init__(self, prefix, owner=None):
        self.prefix = prefix
        self.line = None
        self.error = None
        self.ev = asyncio.Event()
        self.owner = owner
