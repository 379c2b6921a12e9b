"""Diagnosis rules: each looks at the rebuilt Conversation and returns Findings.

RULES is the table (id, function).  A rule that explains a failed command lists that exchange's index in
``explains``; the generic ``command-failed`` rule runs last and reports only what nobody explained.
Error meanings, causes and fixes come from the doctor's own tables (atdoctor/facts.py), written from the
SIMCom manual: the doctor judges the firmware's logs, so it does not share the firmware's tables.

Every Finding has a kind: "host" (a mistake of the host: what the user must fix), "network" / "module"
(what happened to the device: the network or broker refused or went away, the module refused), or "info".
"""

from atdoctor import facts
from atdoctor.findings import (EVENT_IDS, KIND_ORDER, SEV_ORDER, Finding, client_of, count_kinds, err_of,  # noqa: F401
                               ev_recv, ev_reply, ev_sent, failed_with, hint, host_port, sent_before_result)
from atdoctor.rules_mqtt import (CLEANUP, r_busy, r_connect_not_awaited, r_connlost, r_data, r_not_connected,
                                 r_pub_timeout, r_result_missing, r_stale_session, r_subtopic_without_sub)
from atdoctor.rules_timing import _gaps, r_boot, r_echo, r_fixed_sleeps, r_network_order  # noqa: F401
from atdoctor.rules_tls import r_client_id, r_firmware, r_tls


QUERY_EXEC = ("+CSQ", "+CBC", "+CPSI", "+CCLK", "+CGPSINFO", "+CGNSSINFO", "+CNUM", "+CICCID", "+CIMI", "+CGSN",
              "+CGMR", "+CGMM", "+CPMUTEMP", "+CADC")


def _is_query(x):
    return x.op == "?" or (x.op == "" and x.name in QUERY_EXEC)


def code_facts(x, e):
    """(kind, cause, fix) for the failure e = err_of(x): every code has its own cause and fix."""
    code, _meaning, kind, _ev = e
    if kind == "cmqtt":
        c = facts.cmqtt(code)
        if x.name == "+CMQTTCONNECT" and code == 11:
            return (facts.NETWORK, "CONNECT's own deferred result +CMQTTCONNECT: %s,11: the module could not "
                    "establish the MQTT session and names no more specific reason (broker or network unreachable, "
                    "or the link dropped during the connect)" % client_of(x),
                    "check the broker address/port and coverage (AT+CSQ, AT+CPSI?), then retry the connect with "
                    "a backoff")
        return c.kind, c.cause, c.fix
    if kind == "cme":
        c = facts.cme(code)
        return c.kind, c.cause, c.fix
    if kind == "cms":
        return (facts.MODULE,) + facts.CMS_ERROR
    if kind == "result":
        return (facts.NETWORK, "%s reported error %s in its deferred result: the module's TCP/IP service could "
                "not do it (PDP context/network)" % (x.name, code),
                "check registration (AT+CGREG?/CEREG?) and the APN, then retry; the code is from the manual's "
                "TCP/IP error table (ch.11)")
    if _is_query(x):
        return (facts.MODULE, "the module answers %s to the query %s: this firmware does not implement it, or "
                "the value is not available in its current state (e.g. the clock before network time)"
                % (x.final, x.cmd),
                "nothing to fix in the host if it copes without the value: stop polling it (or poll rarely), "
                "or get the value another way; it is not a failure of the session")
    return (facts.HOST,) + facts.ERROR_NO_CODE


def _lost_before(conv, x):
    """The last CONNLOST/NONET URC before x since the last accepted CONNECT, or None."""
    ok = [p.idx for p in conv.find("+CMQTTCONNECT", "=") if p.idx < x.idx and any(e == 0 for _, _, e in p.result_codes())]
    since = ok[-1] if ok else -1
    lost = [u for u in conv.urcs if u[1].startswith(("+CMQTTCONNLOST", "+CMQTTNONET")) and since <= u[2] < x.idx]
    return lost[-1] if lost else None


def in_context(conv, x, e, kind, cause, fix):
    """(kind, severity, cause, fix) once the conversation around x is known: cleanup of a session that is already
    gone is harmless; a refusal that follows a network loss is its consequence."""
    code = e[0]
    connected_before = any(any(c == 0 for _, _, c in p.result_codes()) for p in conv.find("+CMQTTCONNECT", "=")
                           if p.idx < x.idx)
    lost = _lost_before(conv, x)
    if x.name in CLEANUP and (lost is not None or not connected_before):
        return ("info", "info", "%s tore down a session or service that was already gone (%s): the module answers "
                "%s; nothing was lost by it" % (x.cmd, "after %s" % lost[1] if lost else "cleanup at start-up",
                                                 code if code is not None else x.final),
                "nothing to fix: ignore the errors of DISC/REL/STOP while cleaning up, as the manual's recovery does")
    if x.name.startswith("+CMQTT") and code == 9 and lost is not None and lost[1].startswith("+CMQTTNONET"):
        starts = [p for p in conv.find("+CMQTTSTART", "") if lost[2] < p.idx < x.idx]
        if not starts:
            return ("host", "warning", "%s came after %s (the network went away) and before the service was "
                    "restarted: the manual says +CMQTTNONET needs AT+CMQTTSTART again, so the module refused it with "
                    "9 (network not opened)" % (x.cmd, lost[1]),
                    "after +CMQTTNONET go straight to AT+CMQTTSTOP / AT+CMQTTSTART (allow 23), then ACCQ and CONNECT; "
                    "a CONNECT first only costs a refusal")
    if x.name.startswith("+CMQTT") and code == 14:
        # r_busy explains a 14 when the transcript shows what was in flight; here nothing was
        return (facts.MODULE, "warning", "the module reported the client busy while nothing the host sent was "
                "still in flight in this transcript: an incoming message or a result the log does not show, or "
                "the module's own work (a keep-alive, a reconnect)",
                "retry the command after a short delay (a retry that then succeeds is the right handling); if it "
                "persists, capture the module's output completely to see what it is busy with")
    return kind, "error" if kind == facts.HOST else "warning", cause, fix


def r_command_failed(conv, explained):
    """One finding per distinct failure (same command, same code), with how often it happened."""
    groups = {}
    order = []
    for x in conv.exchanges:
        e = err_of(x)
        if not e or x.idx in explained:
            continue
        key = (x.cmd, e[0], e[2])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((x, e))
    out = []
    for key in order:
        items = groups[key]
        x, e = items[0]
        code, meaning, _k, _ev = e
        kind, severity, cause, fix = in_context(conv, x, e, *code_facts(x, e))
        n = len(items)
        title = "%s failed%s" % (x.cmd, (": %s (%s)" % (code, meaning)) if code is not None else "")
        if n > 1:
            title += " - %d times" % n
        evidence = [ev_sent(x)] + ev_reply(x)
        if n > 1:
            last = items[-1][0]
            evidence.append("... the same %d more times, the last at %s" % (n - 1, last.stamp()))
        f = Finding("command-failed", severity, title, cause, fix, evidence, command=x.cmd, code=code,
                    meaning=meaning, explains=[i[0].idx for i in items], kind=kind,
                    data={"count": n, "idx": [i[0].idx for i in items]})
        f.count = n
        out.append(f)
    return out


RULES = (
    ("busy", r_busy),
    ("connect-result-not-awaited", r_connect_not_awaited),
    ("not-connected", r_not_connected),
    ("tls", r_tls),
    ("client-id", r_client_id),
    ("firmware-no-ssl", r_firmware),
    ("echo-on", r_echo),
    ("network-order", r_network_order),
    ("fixed-sleeps", r_fixed_sleeps),
    ("boot-urcs", r_boot),
    ("stale-session", r_stale_session),
    ("connection-lost", r_connlost),
    ("subtopic-not-subscribed", r_subtopic_without_sub),
    ("data", r_data),
    ("pub-timeout", r_pub_timeout),
    ("result-missing", r_result_missing),
)


def _cross_reference(findings):
    """Tell the 'result not awaited' finding what the transcript suggests the unseen result was."""
    likely = []
    for f in findings:
        if f.id == "tls-on-plain-port":
            likely.append("a TLS handshake failure against the plain port (server_type 1 with port %s)"
                          % f.data.get("port"))
        elif f.id == "tls-sni-missing" and f.severity != "info":
            likely.append("a TLS handshake failure because SNI is off")
        elif f.id == "tls-config-incomplete":
            likely.append("a certificate error (incomplete SSL context)")
    if not likely:
        return
    for f in findings:
        if f.id in ("connect-result-not-awaited", "busy-connect-pending", "not-connected"):
            f.cause += " If the connect did fail, the transcript points to: %s." % "; ".join(likely)
            f.data["likely"] = likely


def run_rules(conv):
    findings = []
    for rid, fn in RULES:
        try:
            findings += fn(conv)
        except Exception as e:  # a rule must never take the doctor down
            findings.append(Finding("doctor-rule-error", "info", "rule %s could not run" % rid, repr(e), "", []))
    _cross_reference(findings)
    explained = set()
    for f in findings:
        explained.update(f.explains)
    findings += r_command_failed(conv, explained)
    findings.sort(key=lambda f: (KIND_ORDER.get(f.kind, 5), SEV_ORDER.get(f.severity, 3)))
    return findings
