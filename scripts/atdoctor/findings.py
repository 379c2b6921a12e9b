"""Finding (one diagnosis) and the helpers every rule uses: evidence lines, the error of a failed exchange.

Every Finding has a kind: "host" (a mistake of the host: what the user must fix), "network" / "module" (what
happened to the device: the network or broker refused or went away, the module refused), "info", or "input"
(no AT conversation in the file).  Severity "error" is kept for the host's own mistakes.
"""

import re

from atdoctor import facts
from atdoctor.conversation import unquote, to_int


SEV_ORDER = {"error": 0, "warning": 1, "info": 2}


KIND_ORDER = {"input": 0, "host": 1, "network": 2, "module": 3, "info": 4}


# findings that are something that happened to the device, not a mistake of the host
EVENT_IDS = {"connection-lost": "network", "connect-result-missing": "network", "modem-rebooted": "module",
             "query-unsupported": "module", "firmware-no-ssl": "module"}


class Finding:
    def __init__(self, fid, severity, title, cause, fix, evidence=(), command=None, code=None, meaning=None,
                 explains=(), data=None, kind=None):
        self.id = fid
        self.severity = severity
        self.kind = kind or ("info" if severity == "info" else EVENT_IDS.get(fid, "host"))
        if self.kind in ("network", "module") and severity == "error":
            severity = self.severity = "warning"  # an event, not a mistake: "error" is for the host's own
        self.count = 1
        self.session = 0
        self.title = title
        self.cause = cause
        self.fix = fix
        self.evidence = list(evidence)
        self.command = command
        self.code = code
        self.meaning = meaning
        self.explains = list(explains)
        self.data = data or {}

    def to_dict(self):
        return {"id": self.id, "severity": self.severity, "kind": self.kind, "count": self.count,
                "session": self.session, "title": self.title, "command": self.command,
                "code": self.code, "meaning": self.meaning, "cause": self.cause, "fix": self.fix,
                "evidence": self.evidence, "explains": self.explains, "data": self.data}


def ev_sent(x):
    if x.t is not None:
        return "SENT@%d %s" % (x.t, x.cmd)
    return "line %d: %s" % (x.line, x.cmd)


def ev_recv(t, text):
    if t is not None:
        return "RECV@%d %s" % (t, text)
    return "RECV %s" % text


def ev_reply(x):
    """Evidence lines for what came back to x."""
    got = list(x.lines + x.results)
    if x.final is not None:
        got.append((x.final_t, x.final))
    if all(t is not None for t, _ in got):
        got.sort(key=lambda g: g[0])  # in the order they arrived (a deferred result after the OK)
    return [ev_recv(t, s) for t, s in got]


def host_port(url):
    u = unquote(url)
    m = re.match(r"^(?:(\w+)://)?([^:/]+)(?::(\d+))?", u)
    if not m:
        return u, None, None
    return m.group(2), to_int(m.group(3)), m.group(1)


def err_of(x):
    """(code, meaning, kind, evidence) of a failed exchange, or None.  kind: cmqtt|cme|cms|error|result."""
    for t, text, err in x.result_codes():
        if err != 0:
            if x.name.startswith("+CMQTT"):
                return err, facts.cmqtt(err).meaning, "cmqtt", ev_recv(t, text)
            return err, "%s result %d" % (x.name, err), "result", ev_recv(t, text)
    if x.final is None or x.final == "OK":
        return None
    f = x.final
    if f.startswith("+CME ERROR:"):
        v = f.split(":", 1)[1].strip()
        n = to_int(v)
        c = facts.cme(v)
        return (n if n is not None else v), c.meaning, "cme", ev_recv(x.final_t, f)
    if f.startswith("+CMS ERROR:"):
        v = f.split(":", 1)[1].strip()
        return v, "SMS error %s" % v, "cms", ev_recv(x.final_t, f)
    return None, "the modem answered %s with no code" % f, "error", ev_recv(x.final_t, f)


def failed_with(conv, code):
    return [x for x in conv.exchanges if (err_of(x) or (None,))[0] == code]


def hint(code):
    """Cause of a CMQTT <err> (the doctor's table)."""
    return facts.cmqtt(code).cause if isinstance(code, int) else None


def client_of(x):
    return x.arg(0, "0")


def sent_before_result(conv, p, x):
    """True when x was sent while p's deferred result had not arrived yet."""
    if p.idx >= x.idx or not p.is_async():
        return False
    if p.final is not None and p.final != "OK":
        return False
    if p.wait_ended is not None and x.idx > p.wait_ended:
        return False  # a reboot, STOP/REL or a newer operation in between: p's result is moot
    if not p.results:
        return True
    return p.result_after is not None and p.result_after >= x.idx


def count_kinds(findings):
    """{kind: count}: a host finding of severity info counts as information."""
    k = {"input": 0, "host": 0, "network": 0, "module": 0, "info": 0}
    for f in findings:
        kind = "info" if f.severity == "info" and f.kind == "host" else f.kind
        k[kind] = k.get(kind, 0) + 1
    return k
