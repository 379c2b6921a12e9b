"""Readable report: conversation summary with timings, then numbered findings."""

import textwrap

from atdoctor.rules import err_of


def _short(s, n=70):
    s = s.replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 3] + "..."


def _outcome(conv, x):
    parts = []
    if x.echo:
        parts.append("echo")
    if x.prompt_t is not None or (x.expects_prompt() and x.data):
        parts.append(">")
    if x.data:
        n = sum(len(s.encode()) for _, s in x.data)
        parts.append("data %dB" % n)
    for _, s in x.lines:
        parts.append(_short(s, 50))
    own = [s for t, s in x.results if x.result_after is None or x.result_after <= x.idx]
    parts += own
    parts.append(x.final or "(no final result)")
    late = [s for t, s in x.results if s not in own]
    if late:
        parts.append("later: " + ", ".join(late))
    elif x.is_async() and x.final == "OK" and not x.results:
        parts.append("[%s result never seen]" % x.name)
    e = err_of(x)
    if e and e[0] is not None:
        parts.append("[%s = %s]" % (e[0], e[1]))
    return "; ".join(parts)


def render_text(d, width=110):
    s = d.summary()
    c = d.conv
    out = []
    out.append("AT transcript doctor: %s (%s format)" % (s["source"] or "<input>", s["format"]))
    if s["modem"]:
        out.append("modem: " + ", ".join("%s %s" % (k, v) for k, v in sorted(s["modem"].items())))
    span = " over %d ms (t=%s..%s)" % (s["span_ms"], s["first_ms"], s["last_ms"]) if s["span_ms"] is not None else ""
    out.append("%d commands%s, %d failed, %d URCs, %d app prints" % (s["commands"], span, s["failed_commands"],
                                                                     s["urcs"], s["app_prints"]))
    out.append("")
    out.append("Conversation")
    urcs_after = {}
    for t, text, after, kind in c.urcs:
        if kind != "body":
            urcs_after.setdefault(after, []).append((t, text, kind))
    prev_done = None
    for u in urcs_after.get(-1, []):
        out.append("         <- %s%s (%s)" % ("@%d " % u[0] if u[0] is not None else "", u[1], u[2]))
    for x in c.exchanges:
        gap = ""
        if x.t is not None and prev_done is not None and x.t - prev_done >= 200:
            gap = "   (+%d ms idle)" % (x.t - prev_done)
        done = c.reply_done_t(x)
        mm = c.modem_ms(x)
        took = " (%d ms)" % mm if mm is not None else ""
        stamp = "%7s" % (x.t if x.t is not None else "L%d" % x.line)
        out.append("%s  %s%s" % (stamp, _short(x.cmd), gap))
        out.append("         -> %s%s" % (_outcome(c, x), took))
        for u in urcs_after.get(x.idx, []):
            out.append("         <- %s%s (%s)" % ("@%d " % u[0] if u[0] is not None else "", u[1], u[2]))
        for n in x.notes_after[:4]:
            out.append("         app: %s" % _short(n, 80))
        if len(x.notes_after) > 4:
            out.append("         app: ... (%d more)" % (len(x.notes_after) - 4))
        if done is not None:
            prev_done = done
    out.append("")
    if not d.findings:
        out.append("Findings: none - every command succeeded and no known pitfall was seen.")
        return "\n".join(out) + "\n"
    out.append("Findings (%d errors, %d warnings)" % (s["errors"], s["warnings"]))
    wrap = lambda label, text: textwrap.fill(text, width=width, initial_indent="    %-9s" % label,
                                             subsequent_indent=" " * 13)
    for i, f in enumerate(d.findings, 1):
        out.append("")
        out.append("%2d. [%s] %s  {%s}" % (i, f.severity.upper(), f.title, f.id))
        if f.command:
            out.append(wrap("command:", f.command))
        if f.code is not None:
            out.append(wrap("code:", "%s = %s" % (f.code, f.meaning)))
        out.append(wrap("cause:", f.cause))
        if f.fix:
            out.append(wrap("fix:", f.fix))
        for j, e in enumerate(f.evidence[:12]):
            out.append(("    %-9s" % ("evidence:" if j == 0 else "")) + _short(e, width - 13))
        if len(f.evidence) > 12:
            out.append("             ... %d more" % (len(f.evidence) - 12))
    return "\n".join(out) + "\n"
