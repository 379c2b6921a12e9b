"""Rules about the MQTT session: deferred results not awaited, busy clients, not connected, stale sessions,
connection losses and their recovery, data entry lengths, publish parameters."""

import re

from atdoctor import facts
from atdoctor.conversation import INFO_RE, to_int, unquote
from atdoctor.findings import (Finding, client_of, err_of, ev_recv, ev_reply, ev_sent, failed_with, hint,
                               host_port, sent_before_result)
from atdoctor.rules_tls import _tls_for


def r_busy(conv):
    out = []
    for x in failed_with(conv, 14):
        code, meaning = 14, facts.cmqtt(14).meaning
        pend = [p for p in conv.exchanges[: x.idx] if sent_before_result(conv, p, x)]
        connect = [p for p in pend if p.name == "+CMQTTCONNECT"]
        rx_open = _rx_in_flight(conv, x)
        evidence = []
        if connect:
            p = connect[-1]
            evidence.append(ev_sent(p))
            if p.final is not None:
                evidence.append(ev_recv(p.final_t, p.final))
            evidence.append(ev_sent(x))
            evidence += ev_reply(x)
            gap = ""
            if p.final_t is not None and x.t is not None:
                gap = " %d ms after CONNECT's OK" % (x.t - p.final_t)
            seen = "arrived only later (%s)" % p.results[0][1] if p.results else "never arrived in this transcript"
            out.append(Finding(
                "busy-connect-pending", "error",
                "%s refused with %d (%s): CONNECT was still in progress" % (x.name[1:], code, meaning),
                "%s was sent%s, before the +CMQTTCONNECT: %s,<err> result; the OK to AT+CMQTTCONNECT only means "
                "the request was accepted, the MQTT connect (TCP/TLS + CONNECT/CONNACK) was still running, so the "
                "client was busy. The real connect result %s, so whether the broker accepted the session is "
                "unknown." % (x.cmd, gap, client_of(p), seen),
                "wait for the URC +CMQTTCONNECT: %s,<err> (up to 120 s) before any SUB/TOPIC/PUB; treat a "
                "non-zero <err> as the connect failure it is (the code names why) and only then subscribe or "
                "publish. Drive the 'connected' state from that URC, never from the OK." % client_of(p),
                evidence, command=x.cmd, code=code, meaning=meaning, explains=[x.idx],
                data={"pending": p.cmd, "pending_idx": p.idx, "sent_t": x.t, "gap_ms": (x.t - p.final_t)
                      if (p.final_t is not None and x.t is not None) else None}))
        elif pend or rx_open:
            p = pend[-1] if pend else None
            what = ("%s (its %s result had not arrived)" % (p.cmd, p.name) if p
                    else "an incoming message (+CMQTTRXSTART without +CMQTTRXEND)")
            evidence = ([ev_sent(p)] if p else [ev_recv(rx_open[0], rx_open[1])]) + [ev_sent(x)] + ev_reply(x)
            cut = p is None and not rx_open[1].startswith("+CMQTTRXSTART:")
            cause = "%s was sent while %s." % (x.cmd, what)
            if cut:
                cause = ("%s was sent while an incoming message was in flight: its URC reached the host cut short "
                         "(%r), so the host could not know to wait; the module refused with 14 until the message "
                         "was done." % (x.cmd, rx_open[1]))
            out.append(Finding(
                "busy-async-pending", "error",
                "%s refused with 14 (%s): a previous operation was still in flight" % (x.name[1:], meaning),
                cause,
                "wait for each command's result URC (+CMQTTPUB/SUB/UNSUB/DISC: <idx>,<err>) and drain incoming "
                "+CMQTTRX... until +CMQTTRXEND before the next CMQTT command; retry a command refused with 14.",
                evidence, command=x.cmd, code=14, meaning=meaning, explains=[x.idx],
                kind=facts.NETWORK if cut else None))
    return out


def _rx_in_flight(conv, x):
    open_ = None
    for t, text, after, _kind in conv.urcs:
        if after >= x.idx:
            break
        if text.startswith("+CMQTTRXSTART:") or ("+CMQTTRXSTART:".startswith(text) and len(text) >= 6):
            open_ = (t, text)  # a whole RXSTART, or one cut short ("+CMQTTR"): a message is coming in
        elif text.startswith("+CMQTTRXEND:"):
            open_ = None
    return open_


CONNECT_AWAITED_MS = 5000  # the next command this long after CONNECT's OK: the app did wait for the result


def r_connect_not_awaited(conv):
    out = []
    for p in conv.find("+CMQTTCONNECT", "="):
        if p.final != "OK" or (p.lost_in_reboot is not None and not p.results and not p.notes_after):
            continue  # refused, or the module rebooted before the result (the host could not await it)
        # the next MQTT command: other commands (AT+CSQ from a status timer) do not depend on the
        # session and the module takes them while CONNECT runs
        nxt = next((x for x in conv.exchanges[p.idx + 1:] if x.name.startswith("+CMQTT")), None)
        never = not p.results
        early = nxt is not None and sent_before_result(conv, p, nxt)
        if not (never or early):
            continue
        waited = (nxt.t - p.final_t) if (nxt is not None and nxt.t is not None and p.final_t is not None) else None
        if never and waited is not None and waited >= CONNECT_AWAITED_MS:
            out.append(Finding(
                "connect-result-missing", "warning", "CONNECT's result never came (waited %d ms)" % waited,
                "the app waited %d ms after CONNECT's OK for +CMQTTCONNECT: %s,<err>, which never arrived: the "
                "module lost the connect (network gone, modem silent) or the capture misses it." % (waited, client_of(p)),
                "nothing to change in the app if it then recovers (DISC/REL/STOP/START); check coverage and the "
                "broker's reachability.", [ev_sent(p), ev_recv(p.final_t, p.final), ev_sent(nxt)], command=p.cmd))
            continue
        evidence = [ev_sent(p), ev_recv(p.final_t, p.final)]
        if nxt is not None:
            evidence.append(ev_sent(nxt))
        app = [n for n in p.notes_after if re.search(r"connect|success", n, re.I)]
        if app:
            evidence.append("app printed: %s" % " / ".join(app))
        wait = ""
        if nxt is not None and nxt.t is not None and p.final_t is not None:
            wait = " (the next command went %d ms after the OK)" % (nxt.t - p.final_t)
        if never:
            cause = ("the app took CONNECT's OK as 'connected' and moved on%s; the deferred result "
                     "+CMQTTCONNECT: %s,<err> never appears in the transcript, so the real outcome of the "
                     "connect (0 = connected, else the code says why) was never read." % (wait, client_of(p)))
        else:
            cause = ("the next command was sent before the +CMQTTCONNECT: %s,<err> result (which came at %s)%s."
                     % (client_of(p), p.results[0][1], wait))
        host, port, _ = host_port(p.arg(1, ""))
        fix = ("wait for +CMQTTCONNECT: %s,<err> with a timeout of up to 120 s (the manual's maximum) and "
               "branch on <err>; log it. Only <err> 0 means connected." % client_of(p))
        if host and "mosquitto" in host and port in (1883, None):
            fix += (" For test.mosquitto.org:1883 also check that the carrier lets port 1883 out "
                    "(some APNs block it) and that the broker is reachable.")
        out.append(Finding("connect-result-not-awaited", "error", "CONNECT's result was not awaited",
                           cause, fix, evidence, command=p.cmd, data={"never_seen": never, "idx": p.idx}))
    return out


def r_not_connected(conv):
    out = []
    queries = conv.find("+CMQTTCONNECT", "?")
    explained = set()
    for q in queries:
        states = {}
        for t, text in q.lines:
            m = INFO_RE.match(text)
            if not m:
                continue
            parts = m.group(2).split(",", 1)
            states[parts[0].strip()] = (t, text, len(parts) > 1 and parts[1].strip() != "")
        down = {k: v for k, v in states.items() if not v[2]}
        used = {p.arg(0) for p in conv.find("+CMQTTCONNECT", "=") if p.idx < q.idx}
        if not down or (used and not used & set(down)):
            continue  # only clients the host connected count: an unused client 1 is listed without address
        later11 = [x for x in failed_with(conv, 11) if x.idx > q.idx]
        app = [n for n in q.notes_after if re.search(r"\bconnected\b", n, re.I) and not re.search(r"not|dis", n, re.I)]
        evidence = [ev_sent(q)] + [ev_recv(v[0], v[1]) for v in states.values()]
        if app:
            evidence.append("app printed: %s" % " / ".join(app))
        for x in later11:
            evidence += [ev_sent(x)] + ev_reply(x)
            explained.add(x.idx)
        prior = [p for p in conv.find("+CMQTTCONNECT", "=") if p.idx < q.idx]
        timing = ""
        if prior and prior[-1].final_t is not None and q.t is not None:
            timing = (" The query went %d ms after CONNECT's OK: far too early for a TCP%s connect over LTE to "
                      "have finished." % (q.t - prior[-1].final_t, "/TLS" if _tls_for(conv, prior[-1]) else ""))
        clients = " and ".join(sorted(down))
        cause = ("AT+CMQTTCONNECT? answered '+CMQTTCONNECT: <idx>' with no server address for client %s: "
                 "%s connected (a connected client is listed as +CMQTTCONNECT: <idx>,\"tcp://...\","
                 "<keepalive>,<clean>). The lone number is the client index, not a state; '+CMQTTCONNECT: 1' is "
                 "simply client 1's line.%s" % (clients, "neither is" if len(down) > 1 else "it is NOT", timing))
        if app:
            cause += " The app misread the query as 'connected'."
        if later11:
            cause += (" Every MQTT command after it then failed with 11 (%s), first %s."
                      % (facts.cmqtt(11).meaning, later11[0].cmd))
        out.append(Finding(
            "not-connected", "error", "the MQTT client was not connected (CONNECT? shows no server address)",
            cause,
            "do not poll CONNECT? right after the OK: wait for the +CMQTTCONNECT: <idx>,<err> URC; if you must "
            "poll, 'connected' means the server address is present (or AT+CMQTTDISC? answers <idx>,0). When the "
            "URC reports an error, its code says why the connect failed (TLS: 32 handshake, 33/34 certificates, "
            "31 not authorized).",
            evidence, command=q.cmd, code=11 if later11 else None,
            meaning=facts.cmqtt(11).meaning if later11 else None, explains=sorted(explained),
            data={"query_t": q.t, "clients_down": sorted(down), "failed_11": [x.cmd for x in later11]}))
    # 11 failures without a CONNECT? query
    for x in failed_with(conv, 11):
        if x.idx in explained or x.name in ("+CMQTTCONNECT",) + CLEANUP:
            continue  # +CMQTTCONNECT: <idx>,11 is the connect's own result, not a command sent unconnected
        prior = [p for p in conv.find("+CMQTTCONNECT", "=") if p.idx < x.idx]
        since = prior[-1].idx if prior else -1
        lost = [u for u in conv.urcs if u[1].startswith(("+CMQTTCONNLOST", "+CMQTTNONET")) and since <= u[2] <= x.idx]
        kind = None
        if lost:
            lt = lost[-1][0]
            late = (x.t - lt) if (x.t is not None and lt is not None) else None
            cause = "the connection was lost before: %s" % lost[-1][1]
            if late is not None and late > RACE_MS:
                cause += " - and the host still sent this command %d ms after that URC" % late
            else:
                kind = facts.NETWORK  # the command crossed the URC: what the network did, not a host mistake
        elif not prior:
            cause = "no AT+CMQTTCONNECT was sent before this command"
        elif not any(e == 0 for _, _, e in prior[-1].result_codes()):
            cause = ("the last CONNECT (%s) was never confirmed by +CMQTTCONNECT: %s,0"
                     % (prior[-1].stamp(), client_of(prior[-1])))
        else:
            cause = "the session dropped after CONNECT succeeded (a CONNLOST URC may have been missed)"
            kind = facts.NETWORK
        out.append(Finding(
            "not-connected", "error", "%s failed: 11 (%s)" % (x.name[1:], facts.cmqtt(11).meaning),
            cause + ". " + (hint(11) or ""),
            "track the connection from +CMQTTCONNECT: <idx>,0 / +CMQTTCONNLOST / +CMQTTNONET and reconnect "
            "before publishing.",
            [ev_sent(x)] + ev_reply(x) + [ev_recv(u[0], u[1]) for u in lost[-1:]], command=x.cmd, code=11,
            meaning=facts.cmqtt(11).meaning, explains=[x.idx], kind=kind))
    return out


def r_stale_session(conv):
    out = []
    for x in conv.exchanges:
        e = err_of(x)
        if not e or e[0] not in (19, 21, 23) or not x.name.startswith("+CMQTT"):
            continue
        out.append(Finding(
            "stale-session", "error", "%s: %d (%s)" % (x.name[1:], e[0], e[1]),
            "%s the MQTT service or client is still up from before (an MCU reset without a modem reset)."
            % (hint(e[0]) or ""),
            "at init run AT+CMQTTDISC=0,120 / AT+CMQTTREL=0 / AT+CMQTTSTOP (ignore their errors), then START "
            "and ACCQ again.", [ev_sent(x)] + ev_reply(x), command=x.cmd, code=e[0], meaning=e[1],
            explains=[x.idx]))
    return out


CLEANUP = ("+CMQTTDISC", "+CMQTTREL", "+CMQTTSTOP", "+NETCLOSE")  # tearing down: "not connected" is expected
RACE_MS = 1000  # a command sent this soon after a CONNLOST/NONET URC crossed it (the host could not know yet)


def _restored(conv, after):
    """(exchange, t) of the first CONNECT after index `after` that the broker accepted (+CMQTTCONNECT: i,0)."""
    for p in conv.exchanges[after + 1:]:
        if p.name == "+CMQTTCONNECT" and p.op == "=":
            ok = [(t, s) for t, s, e in p.result_codes() if e == 0]
            if ok:
                return p, ok[0][0]
    return None, None


def r_connlost(conv):
    out = []
    for t, text, after, _k in conv.urcs:
        if not text.startswith(("+CMQTTCONNLOST", "+CMQTTNONET", "+CMQTTPING")):
            continue
        m = INFO_RE.match(text)
        vals = m.group(2).split(",") if m else []
        cause_n = to_int(vals[1]) if len(vals) > 1 else None
        x = conv.exchanges[after] if 0 <= after < len(conv.exchanges) else None
        ev = ([ev_sent(x)] + ev_reply(x) if x else []) + [ev_recv(t, text)]
        explains = []
        kind = None
        if text.startswith("+CMQTTCONNLOST"):
            why = "connection lost: %s" % facts.CONNLOST.get(cause_n, "cause %s" % cause_n)
        elif text.startswith("+CMQTTNONET"):
            why = "the network went away (+CMQTTNONET): the service must be restarted with START"
        else:
            why = "a keep-alive PINGREQ got no answer"
        cause = why + "."
        fix = "reconnect (DISC/REL as needed, then ACCQ/SSLCFG/CONNECT) and resubscribe; drive state from URCs."
        if x is not None and x.name == "+CMQTTUNSUB" and x.arg(2) == "1" and len(x.args) >= 3:
            cause += (" It came right after AT+CMQTTUNSUB with <dup>=1: MQTT 3.1.1 fixes the UNSUBSCRIBE header "
                      "flags to 0010 and a broker must close the connection on other flags (§2.2.2); the "
                      "UNSUB result %s is the consequence (no UNSUBACK)."
                      % (x.results[0][1] if x.results else "(none)"))
            fix = "send AT+CMQTTUNSUB=%s,<len>,0 (dup 0 on a first attempt), then reconnect." % client_of(x)
            explains.append(x.idx)
            kind = "host"  # the host's malformed UNSUBSCRIBE made the broker close the connection
        elif x is not None and err_of(x):
            explains.append(x.idx)
            cause += " %s failed just before (%s)." % (x.name[1:], err_of(x)[1])
        title = why.split(":")[0]
        back, back_t = _restored(conv, after)
        if back is not None:
            took = (back_t - t) if (back_t is not None and t is not None) else None
            title += " - network restored" + (" after %d ms" % took if took is not None else "")
            cause += (" The host recovered: %s was accepted (+CMQTTCONNECT: %s,0%s): network restored."
                      % (back.cmd, client_of(back), " at RECV@%d" % back_t if back_t is not None else ""))
            ev.append(ev_recv(back_t, "+CMQTTCONNECT: %s,0" % client_of(back)))
        else:
            cause += " The transcript ends before a successful reconnect."
        out.append(Finding("connection-lost", "error", title, cause, fix, ev,
                           command=x.cmd if x is not None and explains else None,
                           code=cause_n, meaning=facts.CONNLOST.get(cause_n), explains=explains,
                           kind=kind, data={"restored": back is not None,
                                            "restored_ms": (back_t - t) if back is not None and back_t is not None
                                            and t is not None else None}))
    return out


def r_subtopic_without_sub(conv):
    out = []
    for x in conv.find("+CMQTTSUBTOPIC", "="):
        if x.final != "OK":
            continue
        if any(s.name == "+CMQTTSUB" and s.idx > x.idx for s in conv.exchanges):
            continue
        out.append(Finding(
            "subtopic-not-subscribed", "info", "CMQTTSUBTOPIC without CMQTTSUB",
            "AT+CMQTTSUBTOPIC only queues a topic; nothing is subscribed until AT+CMQTTSUB=<idx> sends the "
            "SUBSCRIBE (or use the one-step AT+CMQTTSUB=<idx>,<len>,<qos>).",
            "follow the queued topics with AT+CMQTTSUB=%s and wait for +CMQTTSUB: %s,0." % (client_of(x), client_of(x)),
            [ev_sent(x)], command=x.cmd))
    return out


def r_data(conv):
    """The data after '>' against the length the command declared. In a byte-exact log (the writer kept the
    bytes: our ATLog, a SIM7600 peer) the count is exact, binary and line breaks included; in a log whose
    writer stripped CRs (the seed thread) a CRLF count is tried too."""
    out = []
    for x in conv.exchanges:
        if not x.expects_prompt() or not x.data:
            continue
        declared = x.declared()
        if declared is None:
            continue
        d = "".join(s for _, s in x.data)
        exact = all(r is not None for r in x.data_raw)
        n = x.data_len()
        redacted = not exact and re.search(r"\[REMOVED|\(Insert|\.\.\.\]", d)
        if x.name == "+CCERTDOWN":
            lf = n
            crlf = n if exact else len(d.replace("\n", "\r\n").encode())
            lead = d.startswith("\n") or d.startswith("\r\n")
            notes = []
            if lead:
                notes.append("the data sent starts with a line break (the SENT block opens with an empty line): "
                             "the declared length must count it (a leading CRLF is 2 bytes)")
            split = [s for _, s in x.echo if s and len(s) <= 3 and set(s) <= set("-")]
            if split:
                notes.append("the echo's last '-' arrived in a separate RECV block: a UART read boundary, "
                             "not a corruption")
            mismatch = not redacted and declared not in (lf, crlf)
            if mismatch:
                notes.append("declared %d bytes but %d were sent" % (declared, n) if exact else
                             "declared %d bytes but %d (LF) / %d (CRLF) were sent" % (declared, lf, crlf))
            if not notes:
                continue
            if redacted:
                notes.append("the content is redacted in the log, so %d bytes cannot be checked against it" % declared)
            out.append(Finding(
                "cert-upload", "warning" if mismatch else "info", "certificate %s: %d bytes declared, %s"
                % (unquote(x.arg(0, "")), declared, x.final or "no final result"),
                "; ".join(notes) or "uploaded",
                "count bytes of the exact data written (len(data) in bytes), not characters or lines; the modem "
                "reads exactly that many.", [ev_sent(x)] + ["%s <%d bytes of certificate/key data, not shown>"
                                                            % ("SENT@%d" % t if t is not None else "sent", c)
                                                            for (t, _s), c in zip(x.data, _piece_lens(x))]
                + ev_reply(x), command=x.cmd, data={"declared": declared, "sent": n, "leading_newline": lead}))
            continue
        if redacted:
            continue
        if n != declared:
            shown = b"".join(r for r in x.data_raw) if exact else d.encode()
            out.append(Finding(
                "data-length", "error", "%s declared %d bytes but %d were sent" % (x.name[1:], declared, n),
                "the modem reads exactly <req_length> bytes after '>': fewer leave it waiting, more spill into the "
                "next command.", "declare len(data) in bytes (len(s.encode()) for text) and write exactly those "
                "bytes, no CR/LF after them.",
                [ev_sent(x)] + ["data (%d bytes) %r" % (n, shown[:80])], command=x.cmd,
                explains=[x.idx] if x.failed() else [], data={"declared": declared, "sent": n}))
    return out


def _piece_lens(x):
    return [len(r) if r is not None else len(s.encode()) for (_, s), r in zip(x.data, x.data_raw)]


def r_pub_timeout(conv):
    out = []
    for x in conv.find("+CMQTTPUB", "="):
        pt = to_int(x.arg(2))
        if pt is not None and pt < facts.PUB_TIMEOUT_MIN:
            out.append(Finding(
                "pub-timeout-low", "warning", "CMQTTPUB pub_timeout %d s is below %d" % (pt, facts.PUB_TIMEOUT_MIN),
                "V3.00 firmware accepts %d-%d s; smaller values may be rejected."
                % (facts.PUB_TIMEOUT_MIN, facts.PUB_TIMEOUT_MAX),
                "use a pub_timeout of at least %d." % facts.PUB_TIMEOUT_MIN, [ev_sent(x)], command=x.cmd,
                explains=[x.idx] if x.failed() else []))
    return out


def r_result_missing(conv):
    out = []
    for x in conv.exchanges:
        if x.is_async() and x.final == "OK" and not x.results and x.name != "+CMQTTCONNECT" and x.lost_in_reboot is None:
            out.append(Finding(
                "result-missing", "warning", "%s's deferred result never arrived" % x.name[1:],
                "%s answered OK but its %s: ...<err> result is not in the transcript (the capture ended, or "
                "the app did not wait for it)." % (x.cmd, x.name),
                "wait for the %s result with a timeout before the next step." % x.name, [ev_sent(x)] + ev_reply(x),
                command=x.cmd))
    return out
