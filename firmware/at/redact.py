# Which command lines carry credentials, and their redaction: read when an at.reader.ATError is made
# for an AT+C... command (imported for the call and dropped again: core.errors.lookup) and by the
# AT log (at/atlog.py, only with debug.at_log), so none of it is resident on the ESP32.

# Commands whose arguments from the k-th on (0-based) are credentials: (prefix, k).
# AT+CMQTTCONNECT=<idx>,"<addr>",<keepalive>,<clean>[,"<user>"[,"<pass>"]]; AT+CGAUTH=<cid>,
# <type>,"<passwd>","<user>" (the order differs between manuals: both are hidden); AT+CPIN="<pin>"[,"<new>"].
# Every prefix starts with "AT+C" and the firmware quotes each credential: ATError.__init__ looks here only
# for an AT+C... command with a '"' in it.
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
    """cmd with its credentials (from secret_at on) replaced by REDACTED."""
    i = secret_at(cmd)
    return cmd if i < 0 else cmd[:i] + REDACTED
