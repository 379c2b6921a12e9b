# The AT engine's errors, made when one happens: the exception of a final ERROR / +CME ERROR / +CMS
# ERROR (its code and meaning looked up) and of the engine's own failures (timeouts, a missing prompt),
# and the name of an error's kind. Imported through core.errors.lookup for the error and dropped again
# (at.engine's _rare: its "f..." functions), apart from at/recover.py: an error the bring-up expects
# (+CME ERROR: SIM busy after a boot) loads these few functions, not the recovery's.
from at import engine  # (its names as engine.X: at/recover.py says why)
from core.errors import lookup


def name(kind):
    """The name of an ATError kind in its text (the class each kind once was): 'ATTimeout'."""
    return "ATError ATTimeout ATCommandError CMEError CMSError ATNoPrompt ModemRebooted".split()[kind]


# The engine's own failures (ATEngine.cmd, _run_exchange), by number: the kind and the words
_FAILED = (
    "OK, but no %s result within %d ms",  # 0 TIMEOUT: the deferred result
    "no '>' prompt within %d ms",  # 1 TIMEOUT
    "no final result within %d ms",  # 2 TIMEOUT
    "final result %s before the '>' prompt: data not sent",  # 3 NO_PROMPT
    "result %s signalled without a line",  # 4 (kind 0)
)


def failed(at, k, cmd, *a):
    """The exception of the engine's failure k (_FAILED) for cmd; a timeout (0..2) is counted."""
    if k < 3:
        at.stats["timeouts"] += 1
        c = engine.TIMEOUT
    else:
        c = engine.NO_PROMPT if k == 3 else 0
    return engine.ATError(cmd, msg=_FAILED[k] % a, kind=c)


def final_error(at, r, w):
    """The exception for a final ERROR / +CME ERROR / +CMS ERROR of r (code and meaning looked up)."""
    f = r.final
    if f.startswith("+CME ERROR:") or f.startswith("+CMS ERROR:"):
        return cme_error(r, f)
    if f == "ERROR":
        code, meaning, pfx = number(r, w)
        if isinstance(code, int):
            meaning = at.meaning(pfx, code) if at.meaning else "error %s" % code
        return engine.ATError(r.cmd, code, meaning, r.lines, "ERROR", engine.ERROR)


def number(r, w):
    """final_error's <err> of a plain ERROR (its own function: each stays a small block): (code,
    meaning, prefix). '+CMD: 0,<err>' then ERROR: the deferred result's line, else the command's own
    lines (an '+IP ERROR:' line: code 'IP', its text the meaning)."""
    code, meaning, pfx, text = None, None, engine.response_prefix(r.cmd), None
    if w is not None and w.line is not None:
        text, pfx = w.line[len(w.prefix) :], w.prefix
    else:
        for ln in r.lines:
            if pfx and ln.startswith(pfx):
                text = ln[len(pfx) :]
            elif ln.startswith("+IP ERROR:"):
                code, meaning, text = "IP", ln[10:].strip(), None
    if text is not None:  # the last number: '<idx>,<err>' or '<err>'
        try:
            code = int(text[text.rfind(",") + 1 :].strip())
        except ValueError:
            code = None
    return code, meaning, pfx


def cme_error(r, f):
    """final_error's +CME ERROR / +CMS ERROR (its own function: each stays a small block)."""
    code = f[11:].strip()
    try:
        code = int(code)
    except ValueError:  # a text (AT+CMEE=2 on some firmware)
        pass
    if f.startswith("+CMS ERROR:"):
        return engine.ATError(r.cmd, code, "message service error", r.lines, f[:10], engine.CMS)
    # the 3GPP text of a numeric code: table at/cme.py, read on demand
    meaning = (lookup("at.cme", "meaning", code) or "CME error %s" % code) if isinstance(code, int) else code
    return engine.ATError(r.cmd, code, meaning, r.lines, f[:10], engine.CME)
