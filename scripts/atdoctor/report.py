"""Readable report: per session, the conversation with timings, then numbered findings by kind; a summary line
that keeps host mistakes, network/module events and information apart. Output passes the secret scrubber."""

import textwrap

from atdoctor.findings import count_kinds, err_of


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
        parts.append("data %dB" % x.data_len())
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


LABEL = {("host", "error"): "ERROR", ("host", "warning"): "WARNING", "network": "NETWORK EVENT",
         "module": "MODULE EVENT", "info": "INFO", "input": "NO CONVERSATION"}


def _label(f):
    if f.kind == "host" and f.severity != "info":
        return LABEL[("host", f.severity)]
    if f.kind == "host":
        return "INFO"
    return LABEL.get(f.kind, f.kind.upper())


def summary_line(k, findings=()):
    """'0 host mistakes, 2 network events (2 restored), 1 module event, 3 information'."""
    def n(count, word, plural=None):
        return "%d %s" % (count, word if count == 1 else (plural or word + "s"))
    lost = [f for f in findings if f.id == "connection-lost" and f.kind == "network"]
    restored = len([f for f in lost if f.data.get("restored")])
    net = n(k["network"], "network event") + (" (%d restored)" % restored if lost else "")
    parts = [n(k["host"], "host mistake"), net, n(k["module"], "module event"), "%d information" % k["info"]]
    return ", ".join(parts)


def _conversation(c, out):
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


def _findings(findings, out, width):
    wrap = lambda label, text: textwrap.fill(text, width=width, initial_indent="    %-9s" % label,
                                             subsequent_indent=" " * 13)
    for i, f in enumerate(findings, 1):
        out.append("")
        out.append("%2d. [%s] %s  {%s}" % (i, _label(f), f.title, f.id))
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


def _session_head(p, many):
    span = " over %d ms (t=%s..%s)" % (p["span_ms"], p["first_ms"], p["last_ms"]) if p["span_ms"] is not None else ""
    where = ""
    if many and p["lines"][0] is not None:
        where = "Session %d (lines %d-%d): " % (p["session"], p["lines"][0], p["lines"][1])
    head = "%s%d commands%s, %d failed, %d URCs, %d app prints" % (where, p["commands"], span, p["failed_commands"],
                                                                 p["urcs"], p["app_prints"])
    if p["prose_lines"]:
        head += ", %d lines of text around the log (not the application's)" % p["prose_lines"]
    return head


def render_text(d, width=110):
    s = d.summary()
    out = []
    out.append("AT transcript doctor: %s (%s format)" % (s["source"] or "<input>", s["format"]))
    if d.verdict is not None:
        out.append("")
        out.append("%s: %s" % (d.verdict.title, d.verdict.cause))
        out.append("fix: %s" % d.verdict.fix)
        out.append("")
        out.append("Summary: no AT conversation to judge (--check fails)")
        return d.scrub.text("\n".join(out) + "\n")
    if s["modem"]:
        out.append("modem: " + ", ".join("%s %s" % (k, v) for k, v in sorted(s["modem"].items())))
    many = len(d.sessions) > 1
    if many:
        out.append("%d sessions (the clock goes back or the host starts over): each is judged on its own"
                   % len(d.sessions))
    for sess, p in zip(d.sessions, s["per_session"]):
        out.append("")
        out.append(_session_head(p, many))
        out.append("")
        out.append("Conversation" + (" (session %d)" % p["session"] if many else ""))
        _conversation(sess.conv, out)
        out.append("")
        k = count_kinds(sess.findings)
        if not sess.findings:
            out.append("Findings%s: none - every command succeeded and no known pitfall was seen."
                       % (" (session %d)" % p["session"] if many else ""))
            continue
        out.append("Findings%s: %s" % (" (session %d)" % p["session"] if many else "",
                                        summary_line(k, sess.findings)))
        _findings(sess.findings, out, width)
    out.append("")
    out.append("Summary: %s%s" % (d.headline(), " in %d sessions" % len(d.sessions) if many else ""))
    return d.scrub.text("\n".join(out) + "\n")
