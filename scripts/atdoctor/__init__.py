"""AT transcript doctor: rebuild a SIM7600 conversation from a transcript and explain its failures.

    from atdoctor import diagnose, render_text
    d = diagnose(open("modem.log", "rb").read(), source="modem.log")
    print(render_text(d))          # or d.to_dict() for JSON
    d.findings                     # [Finding] (id, kind, severity, title, command, code, meaning, cause, fix, evidence)
    d.sessions                     # [Session]: a file split where its clock goes back or the host starts over
    d.ids()                        # finding ids, host mistakes first
    d.check_failed()               # what --check exits 1 on: a host mistake, or no AT conversation at all

Finding kinds: "host" (a mistake of the host: what the user must fix), "network"/"module" (what happened to
the device: the network or broker refused or went away, the module refused), "info", and "input" (the file
holds no AT conversation, or one captured at the wrong baud rate).

Host-only (CPython).  The doctor's SIM7600 facts are its own (atdoctor/facts.py), not the firmware's tables.
No output contains a password, PIN or key seen in the transcript (atdoctor/redact.py).
"""

import re

from atdoctor.conversation import Conversation
from atdoctor.detect import input_verdict
from atdoctor.parse import parse_events
from atdoctor.redact import Scrubber
from atdoctor.report import render_text
from atdoctor.rules import RULES, Finding, count_kinds, run_rules

__all__ = ["diagnose", "Diagnosis", "Session", "render_text", "RULES", "Finding"]

NEW_BOOT_GAP_MS = 60000  # a bare "AT" this long after the last traffic: the host started over


def split_sessions(events):
    """[[event]]: a new session where the log's clock goes back (a new log from a rebooted host), where the
    module booted (RDY) and the host starts again with AT, or where a bare AT follows a long silence.
    App prints that sit against the next block (no blank line between) move with it."""
    sessions = [[]]
    last_t = None
    rdy = False
    for ev in events:
        cur = sessions[-1]
        t = ev.get("t")
        has_cmd = any(e["kind"] == "cmd" for e in cur)
        brk = False
        if t is not None and last_t is not None and t < last_t and has_cmd:
            brk = True  # the clock went back
        elif ev["kind"] == "cmd" and ev["text"].strip().upper() == "AT" and has_cmd:
            if rdy or (t is not None and last_t is not None and t - last_t >= NEW_BOOT_GAP_MS):
                brk = True
        if brk:
            moved = []
            while cur and cur[-1]["kind"] in ("app", "rx") and cur[-1].get("t") is None \
                    and cur[-1].get("glue", "prev") in ("next", None):
                moved.insert(0, cur.pop())
            sessions.append(moved)
            cur = sessions[-1]
            rdy = False
        if ev["kind"] == "rx" and ev.get("text") == "RDY":
            rdy = True
        elif ev["kind"] == "cmd":
            rdy = False
        cur.append(ev)
        if t is not None:
            last_t = t
    return [s for s in sessions if s] or [[]]


class Session:
    def __init__(self, idx, events, fmt):
        self.idx = idx
        self.events = events
        self.conv = Conversation(events, fmt)
        self.findings = run_rules(self.conv)
        for f in self.findings:
            f.session = idx
        lines = [e["line"] for e in events if e.get("line") is not None]
        self.first_line = min(lines) if lines else None
        self.last_line = max(lines) if lines else None

    def summary(self, fmt=None):
        c = self.conv
        ts = [x.t for x in c.exchanges if x.t is not None]
        ident = {}
        for x in c.exchanges:
            for _, s in x.lines + x.results:
                m = re.match(r"^(Model|Revision|\+CGMR|\+GMR|Manufacturer):\s*(.+)$", s)
                if m:
                    ident[m.group(1).lstrip("+")] = m.group(2).strip()
        failed = [x for x in c.exchanges if x.failed() or any(e for _, _, e in x.result_codes())]
        urcs = [u for u in c.urcs if u[3] not in ("body",)]
        # deferred results are URCs too, also those that arrived before the next command
        deferred = sum(len(x.results) for x in c.exchanges if x.is_async()) - len([u for u in urcs if u[3] == "deferred"])
        return {
            "session": self.idx + 1, "lines": [self.first_line, self.last_line], "commands": len(c.exchanges),
            "first_ms": min(ts) if ts else None, "last_ms": max(ts) if ts else None,
            "span_ms": (max(ts) - min(ts)) if ts else None, "failed_commands": len(failed),
            "app_prints": len(c.notes), "prose_lines": len(c.prose), "urcs": len(urcs) + max(0, deferred),
            "modem": ident,
        }


class Diagnosis:
    def __init__(self, source, fmt, events, sessions, verdict, scrub):
        self.source = source
        self.fmt = fmt
        self.events = events
        self.sessions = sessions
        self.verdict = verdict  # a Finding of kind "input" when there is no AT conversation, else None
        self.scrub = scrub
        self.findings = ([verdict] if verdict else []) + [f for s in sessions for f in s.findings]

    @property
    def conv(self):
        """The first session's conversation (the only one in a file that holds one session)."""
        return self.sessions[0].conv

    def ids(self):
        return [f.id for f in self.findings]

    def by_id(self, fid):
        return [f for f in self.findings if f.id == fid]

    def counts(self):
        return count_kinds(self.findings)

    def headline(self):
        """One line for a caller's log (make sim): '0 host mistakes, 2 network events (2 restored), ...'."""
        if self.verdict is not None:
            return self.verdict.title
        from atdoctor.report import summary_line

        return summary_line(self.counts(), self.findings)

    def host_mistakes(self):
        return [f for f in self.findings if f.kind == "host" and f.severity != "info"]

    def check_failed(self):
        """--check: a host mistake of severity error, or no AT conversation. Events of the network or the
        module (CONNLOST, an unsupported query) and information never fail it."""
        return self.verdict is not None or any(f.severity == "error" for f in self.host_mistakes())

    def summary(self):
        per = [s.summary() for s in self.sessions]
        k = self.counts()
        spans = [p["span_ms"] for p in per if p["span_ms"] is not None]
        modem = {}
        for p in per:
            modem.update(p["modem"])
        return {
            "source": self.source, "format": self.fmt, "sessions": len(self.sessions),
            "conversation_found": self.verdict is None,
            "commands": sum(p["commands"] for p in per), "span_ms": sum(spans) if spans else None,
            "first_ms": per[0]["first_ms"], "last_ms": per[-1]["last_ms"],
            "failed_commands": sum(p["failed_commands"] for p in per),
            "app_prints": sum(p["app_prints"] for p in per), "prose_lines": sum(p["prose_lines"] for p in per),
            "urcs": sum(p["urcs"] for p in per), "modem": modem,
            "host_mistakes": k["host"], "network_events": k["network"], "module_events": k["module"],
            "information": k["info"], "input_problems": k["input"],
            "errors": len([f for f in self.host_mistakes() if f.severity == "error"]),
            "warnings": len([f for f in self.host_mistakes() if f.severity == "warning"]),
            "per_session": per,
        }

    def to_dict(self):
        out = {"summary": self.summary(),
               "sessions": [{"summary": s.summary(),
                             "conversation": [x.to_dict() for x in s.conv.exchanges],
                             "urcs": [{"t": t, "text": txt if k != "body" else "<%d bytes of message body>"
                                       % len(txt.encode()), "after": a, "kind": k}
                                      for t, txt, a, k in s.conv.urcs]} for s in self.sessions],
               "findings": [f.to_dict() for f in self.findings]}
        # the first session's conversation stays at the top level, as before sessions existed
        out["conversation"] = out["sessions"][0]["conversation"]
        out["urcs"] = out["sessions"][0]["urcs"]
        return self.scrub.tree(out)


def diagnose(text, source=None, fmt="auto"):
    raw = bytes(text) if isinstance(text, (bytes, bytearray)) else text.encode("utf-8", "replace")
    events, fmt = parse_events(raw, fmt)
    sessions = [Session(i, evs, fmt) for i, evs in enumerate(split_sessions(events))]
    secrets = [v for s in sessions for v in s.conv.secrets]
    verdict = input_verdict(raw, sessions, source)
    return Diagnosis(source, fmt, events, sessions, verdict, Scrubber(secrets))
