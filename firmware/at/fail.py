# The AT engine's errors with their words: its own failures (a timeout, no prompt, a result without
# its line) and a final ERROR / +CME ERROR / +CMS ERROR decoded into its code and meaning. Imported
# through core.errors.lookup for the one call and dropped again (at.engine), apart from at/recover.py:
# an ERROR, expected or not (a module that boots answers several), loads only this small module.
# Every function takes the ATEngine (or the Reply) first; the classes come through at.engine, as
# at/recover.py's do (the reader module the engine was built with).
from at.engine import ATCommandError, ATError, ATNoPrompt, ATTimeout, CMEError, CMSError, response_prefix
from core.errors import lookup

# The engine's own failures (ATEngine.cmd, _run_exchange), by number: the class and the words
_FAILED = (
    "OK, but no %s result within %d ms",  # 0 ATTimeout: the deferred result
    "no '>' prompt within %d ms",  # 1 ATTimeout
    "no final result within %d ms",  # 2 ATTimeout
    "final result %s before the '>' prompt: data not sent",  # 3 ATNoPrompt
    "result %s signalled without a line",  # 4 ATError
)


def failed(at, k, cmd, *a):
    """The exception of the engine's failure k (_FAILED) for cmd; a timeout (0..2) is counted."""
    if k < 3:
        at.stats["timeouts"] += 1
        c = ATTimeout
    else:
        c = ATNoPrompt if k == 3 else ATError
    return c(cmd, msg=_FAILED[k] % a)


def final_error(at, r, w):
    """The exception for a final ERROR / +CME ERROR / +CMS ERROR of r (code and meaning looked up)."""
    f = r.final
    if f.startswith("+CME ERROR:") or f.startswith("+CMS ERROR:"):
        return cme_error(r, f)
    if f == "ERROR":
        code, meaning, pfx = plain_code(r, w)
        if isinstance(code, int):
            meaning = at.meaning(pfx, code) if at.meaning else "error %s" % code
        return ATCommandError(r.cmd, code, meaning, r.lines, "ERROR")


def plain_code(r, w):
    """final_error's (code, meaning, prefix) of a plain ERROR: '+CMD: 0,<err>' then ERROR, the deferred
    result's line, else the command's own lines (its own function: each stays a small block)."""
    code, meaning, pfx, text = None, None, response_prefix(r.cmd), None
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
        return CMSError(r.cmd, code, "message service error", r.lines, f[:10])
    # the 3GPP text of a numeric code: table at/cme.py, read on demand
    meaning = (lookup("at.cme", "meaning", code) or "CME error %s" % code) if isinstance(code, int) else code
    return CMEError(r.cmd, code, meaning, r.lines, f[:10])
