# The words for the SIM7600's error and state codes: the functions that explain a code, reading the texts
# of modem/code_table.py from its file on flash (core/rows.py: that table is never imported on the device)
# when an error or a state has to be explained. A module read on demand: modem.codes' functions import it
# through core.errors.lookup and drop it again, so none of this stays resident on the ESP32. modem.codes
# hands its functions out (its __getattr__ -> attr()); the words of a session that went down are at the end
# (the errors and events of modem.cmqtt and the code families are modem/code_events.py's).
# Few module globals (its dict table is one block): what one function alone uses is imported there.
from core.errors import lookup
from modem import codes
from modem.errors import parse_code


def words(*keys):
    """The texts of modem/code_table.py's lines "<key>=<text>" for each key ("E11": CMQTT <err> 11's
    meaning), None where there is no such line; read from the table's file beside modem.codes."""
    f = getattr(codes, "__file__", None)  # (a frozen image's names no file: core/rows.py imports the table)
    ks = []
    for k in keys:
        ks.append((k + "=").encode())
    out = []
    for t in lookup("core.rows", "find", f[: f.rfind("/") + 1] if f else None, "modem.code_table", ks):
        out.append(t[t.find("=") + 1 :] if t else None)
    return out


def word(table, code):
    """The text of `code` (an int >= 0) in `table` (its letter: E, N, H, L, R), or None."""
    if not isinstance(code, int) or code < 0:
        return None
    return words("%s%d" % (table, code))[0]


def msg(n, args=None):
    """Message M<n> of modem/code_table.py (a rare failure of the bring-up or the connect: read from flash when
    it happens, not carried by the modules of every bring-up), formatted with the tuple `args`; without
    args the template itself (for a log call that formats). A table that cannot be read gives the number
    and the arguments instead of the words."""
    try:
        t = words("M%d" % n)[0]
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - the failure being reported matters more than its words
        t = None
    if t is None:
        return "M%d %r" % (n, args)
    return t if args is None else t % args


def cmqtt_info(code):
    """(name, meaning, hint) of CMQTT <err> `code`: the name is the table's N line or the meaning in
    CamelCase ('sock connect fail' -> 'SockConnectFail'), a distinct one per code."""
    m = None
    if isinstance(code, int) and code >= 0:
        m, n, h = words("E%d" % code, "N%d" % code, "H%d" % code)
    if m is None:
        return ("UnknownError", "unknown CMQTT error %s" % code, None)
    if n:
        return (n, m, h)
    out = []
    for w in m.replace(":", " ").replace("-", " ").split():
        out.append(w[0].upper() + w[1:])
    return ("".join(out), m, h)


def cmqtt_meaning(code):
    return word("E", code) or "unknown CMQTT error %s" % code


def cmqtt_hint(code):
    return word("H", code)


def connlost_cause(cause):
    return word("L", cause) or "unknown cause %s" % cause


def cme_meaning(code):
    return (lookup("at.cme", "meaning", code) if isinstance(code, int) else None) or "CME error %s" % code


def reg_state(stat):
    return word("R", stat) or "unknown state %s" % stat


_TABLES = {"CMQTT_ERRORS": "E", "CMQTT_HINTS": "H", "CMQTT_CONNLOST_CAUSES": "L", "REG_STATES": "R"}


def reg_error(st, verdict, timeout_ms):
    """modem/netreg.py wait_registered's ModemError for the stats `st` (CREG, CGREG, CEREG):
    'reg_denied' (verdict 'denied') or 'reg_timeout' after timeout_ms."""
    from modem.errors import ModemError

    if verdict == "denied":
        return ModemError(words("G0")[0] % st, codes.REG_DENIED, reg_state(codes.REG_DENIED), kind="reg_denied")
    names = ", ".join(reg_state(s) for s in st if s is not None) or "no answer to any query"
    return ModemError(words("G1")[0] % ((timeout_ms,) + st + (names,)), kind="reg_timeout")


def attr(name):
    """modem.codes.<name> for what is not resident there: a function of this module, or a whole
    table (built on each access)."""
    if name in ("cmqtt_info", "cmqtt_meaning", "cmqtt_hint", "connlost_cause", "cme_meaning", "reg_state"):
        return globals()[name]
    if name in ("is_refused", "is_tls", "is_peer_refusal"):  # (the families: modem/code_events.py's, forgotten again)
        return lookup(codes.EVENTS, "family", name)
    if name in _TABLES:  # (host tools and tests: the table module imported for it)
        return lookup("modem.code_table", "get", _TABLES[name])
    if name == "FIRMWARE_NO_SSL_FIX":
        return " ".join(words("F0", "F1"))
    if name == "CME_ERRORS":
        return lookup("at.cme", "table")
    if name in ("CMQTT_ERROR_COUNT", "RX_CHUNK_MAX"):  # limits of [M] ch.16 only host tools and tests read:
        return 36 if name == "CMQTT_ERROR_COUNT" else 1500  # <err> 0..35; RXTOPIC/RXPAYLOAD chunks at most
    if name in ("BOOT_URCS", "UNSOLICITED"):
        from at import engine

        u = engine.UNSOLICITED
        return u if name == "UNSOLICITED" else u[:4]  # the boot-time URCs: its first four
    raise AttributeError(name)


# ---------------------------------------------------------------------------------------------
# The words of a session that went down (down_reason); the errors themselves (a failed AT exchange, a refused
# topic or payload, a dropped message) are modem/code_events.py's: they need no texts.
def down_reason(self, line):
    """Why the session went down, from its URC line."""
    if line.startswith("+CMQTTNONET"):
        return "no network (+CMQTTNONET): service needs STOP/START"
    code = parse_code(line.split(":", 1)[1])
    if line.startswith("+CMQTTCONNLOST"):
        return "connection lost (cause %s: %s)" % (code, connlost_cause(code))
    return "keep-alive ping failed (error %s: %s)" % (code, cmqtt_meaning(code or 0))
