"""AT transcript doctor: rebuild a SIM7600 conversation from a transcript and explain its failures.

    from atdoctor import diagnose, render_text
    d = diagnose(open("modem.log").read(), source="modem.log")
    print(render_text(d))          # or d.to_dict() for JSON
    d.findings                     # [Finding] (id, severity, title, command, code, meaning, cause, fix, evidence)
    d.ids()                        # finding ids, most severe first

Host-only (CPython).  The SIM7600 error tables are imported from firmware/modem/codes.py.
"""

import re

from atdoctor.conversation import Conversation
from atdoctor.parse import parse_events
from atdoctor.report import render_text
from atdoctor.rules import RULES, Finding, run_rules

__all__ = ["diagnose", "Diagnosis", "render_text", "RULES", "Finding"]


class Diagnosis:
    def __init__(self, source, fmt, events, conv, findings):
        self.source = source
        self.fmt = fmt
        self.events = events
        self.conv = conv
        self.findings = findings

    def ids(self):
        return [f.id for f in self.findings]

    def by_id(self, fid):
        return [f for f in self.findings if f.id == fid]

    def summary(self):
        c = self.conv
        ts = [x.t for x in c.exchanges if x.t is not None]
        ident = {}
        for x in c.exchanges:
            for _, s in x.lines + x.results:
                m = re.match(r"^(Model|Revision|\+CGMR|\+GMR|Manufacturer):\s*(.+)$", s)
                if m:
                    ident[m.group(1).lstrip("+")] = m.group(2).strip()
        failed = [x for x in c.exchanges if x.failed() or any(e for _, _, e in x.result_codes())]
        return {
            "source": self.source, "format": self.fmt, "commands": len(c.exchanges),
            "first_ms": min(ts) if ts else None, "last_ms": max(ts) if ts else None,
            "span_ms": (max(ts) - min(ts)) if ts else None, "failed_commands": len(failed),
            "app_prints": len(c.notes), "urcs": len([u for u in c.urcs if u[3] != "body"]), "modem": ident,
            "errors": len([f for f in self.findings if f.severity == "error"]),
            "warnings": len([f for f in self.findings if f.severity == "warning"]),
        }

    def to_dict(self):
        return {"summary": self.summary(), "conversation": [x.to_dict() for x in self.conv.exchanges],
                "urcs": [{"t": t, "text": s, "after": a, "kind": k} for t, s, a, k in self.conv.urcs],
                "findings": [f.to_dict() for f in self.findings]}


def diagnose(text, source=None, fmt="auto"):
    events, fmt = parse_events(text, fmt)
    conv = Conversation(events, fmt)
    return Diagnosis(source, fmt, events, conv, run_rules(conv))
