"""Diagnosis rules: each looks at the rebuilt Conversation and returns Findings.

RULES is the table (id, function).  A rule that explains a failed command lists that exchange's index in
``explains``; the generic ``command-failed`` rule runs last and reports only what nobody explained.
Error meanings, causes and fixes come from the doctor's own tables (atdoctor/facts.py), written from the
SIMCom manual: the doctor judges the firmware's logs, so it does not share the firmware's tables.

Every Finding has a kind: "host" (a mistake of the host: what the user must fix), "network" / "module"
(what happened to the device: the network or broker refused or went away, the module refused), or "info".
"""

import re

from atdoctor import facts
from atdoctor.conversation import INFO_RE, to_int, unquote

SEV_ORDER = {"error": 0, "warning": 1, "info": 2}
KIND_ORDER = {"input": 0, "host": 1, "network": 2, "module": 3, "info": 4}
# findings that are something that happened to the device, not a mistake of the host
EVENT_IDS = {"connection-lost": "network", "connect-result-missing": "network", "modem-rebooted": "module",
             "query-unsupported": "module", "firmware-no-ssl": "module"}
CLOUD_HOSTS = ("amazonaws.com", "azure-devices.net", "hivemq.cloud", "emqxsl", "googleapis.com",
               "cloudmqtt", "flespi.io", "thingsboard.cloud", "s1.eu.hivemq", "iot.")
MANUAL_CLIENT_IDS = ("SIMCom_client01", "SIMCom_client02", "client test0")
QUERY_ONLY_OK = ("", "+CSQ", "+CREG", "+CGREG", "+CEREG", "+CPSI", "+COPS", "+CPIN")


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


# ------------------------------------------------------------------ evidence helpers

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
    out = [ev_recv(t, s) for t, s in x.lines + x.results]
    if x.final is not None:
        out.append(ev_recv(x.final_t, x.final))
    return out


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


# ------------------------------------------------------------------ rules

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
            out.append(Finding(
                "busy-async-pending", "error",
                "%s refused with 14 (%s): a previous operation was still in flight" % (x.name[1:], meaning),
                "%s was sent while %s." % (x.cmd, what),
                "wait for each command's result URC (+CMQTTPUB/SUB/UNSUB/DISC: <idx>,<err>) and drain incoming "
                "+CMQTTRX... until +CMQTTRXEND before the next CMQTT command.",
                evidence, command=x.cmd, code=14, meaning=meaning, explains=[x.idx]))
    return out


def _rx_in_flight(conv, x):
    open_ = None
    for t, text, after, _kind in conv.urcs:
        if after >= x.idx:
            break
        if text.startswith("+CMQTTRXSTART:"):
            open_ = (t, text)
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
        if not down:
            continue
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
        if x.idx in explained or x.name == "+CMQTTCONNECT":
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


# ---------------------------------------------------------------- TLS

def _accq_for(conv, p):
    acc = [a for a in conv.find("+CMQTTACCQ", "=") if a.idx < p.idx and a.arg(0) == p.arg(0)]
    return acc[-1] if acc else None


def _tls_for(conv, p):
    a = _accq_for(conv, p)
    return a is not None and a.arg(2, "0") == "1"


def _ssl_ctx_for(conv, p):
    s = [x for x in conv.find("+CMQTTSSLCFG", "=") if x.idx < p.idx and x.arg(0) == p.arg(0) and x.final == "OK"]
    if s:
        return to_int(s[-1].arg(1)), s[-1]
    return to_int(p.arg(0), 0), None  # manual: without CMQTTSSLCFG, ctx = client index


def _sslcfg(conv, before_idx, ctx):
    """{key: (value, exchange)} of AT+CSSLCFG="key",ctx,value accepted before before_idx."""
    cfg = {}
    for x in conv.find("+CSSLCFG", "="):
        if x.idx >= before_idx or x.final != "OK" or len(x.args) < 3:
            continue
        if to_int(x.arg(1)) != ctx:
            continue
        cfg[unquote(x.arg(0)).lower()] = (unquote(x.arg(2)), x)
    return cfg


def r_tls(conv):
    out = []
    for p in conv.find("+CMQTTCONNECT", "="):
        host, port, scheme = host_port(p.arg(1, ""))
        a = _accq_for(conv, p)
        tls = _tls_for(conv, p)
        ctx, sslcfg_x = _ssl_ctx_for(conv, p)
        cfg = _sslcfg(conv, p.idx, ctx)
        base_ev = ([ev_sent(a)] if a else []) + [ev_sent(p)]
        if tls and (port == 1883 or port is None):
            out.append(Finding(
                "tls-on-plain-port", "error", "TLS selected for a plain-MQTT port (%s:%s)" % (host, port or 1883),
                "AT+CMQTTACCQ's third parameter <server_type>=1 selects SSL/TLS, but the broker address is port "
                "%d, a plain MQTT listener: the modem starts a TLS handshake the broker never answers, so the "
                "connect cannot succeed (expect 32 handshake fail / socket errors in the +CMQTTCONNECT URC)%s."
                % (port or 1883, "" if cfg else ", and no AT+CSSLCFG context was configured either"),
                "for plain MQTT use AT+CMQTTACCQ=%s,\"<id>\",0 with port 1883; for MQTTS keep <server_type>=1, "
                "configure the SSL context (CSSLCFG sslversion/authmode/cacert/enableSNI, CMQTTSSLCFG) and use the "
                "broker's TLS port (8883)." % client_of(p),
                base_ev, command=a.cmd if a else p.cmd, data={"host": host, "port": port}))
        if not tls and port == 8883:
            out.append(Finding(
                "plain-on-tls-port", "error", "plain MQTT to a TLS port (%s:8883)" % host,
                "AT+CMQTTACCQ has <server_type> 0 (or none), so the modem speaks plain MQTT to port 8883, which "
                "expects a TLS handshake.",
                "use AT+CMQTTACCQ=%s,\"<id>\",1 and set up the SSL context before CONNECT." % client_of(p),
                base_ev, command=p.cmd))
        if not tls or port == 1883 or port is None:
            continue
        is_name = host and not re.match(r"^\d+\.\d+\.\d+\.\d+$", host)
        sni = cfg.get("enablesni")
        if is_name and (sni is None or sni[0] != "1"):
            cloud = any(c in host for c in CLOUD_HOSTS)
            ok = any(e == 0 for _, _, e in p.result_codes())
            evidence = list(base_ev) + [ev_sent(v[1]) for v in cfg.values()]
            if ok:
                why = ("This connect succeeded anyway (+CMQTTCONNECT: %s,0): the broker accepted a ClientHello "
                       "without SNI this time, but cloud endpoints are moving to require it." % client_of(p))
            elif cloud:
                why = ("AWS IoT and other shared-IP cloud brokers pick the certificate/endpoint by SNI and now "
                       "require it: without it the TLS handshake does not complete and the +CMQTTCONNECT URC "
                       "reports the failure. (The thread's working 2020 setup connected without SNI, so this is a "
                       "likely cause, not a proven one: the URC's code would tell.)")
            else:
                why = "Brokers on shared IPs need SNI to complete the TLS handshake."
            out.append(Finding(
                "tls-sni-missing", "info" if ok else "warning",
                "SNI not enabled for a TLS connect to %s" % host,
                "SSL context %d never got AT+CSSLCFG=\"enableSNI\",%d,1 (the default is 0), so the ClientHello "
                "carries no server name. %s" % (ctx, ctx, why),
                "send AT+CSSLCFG=\"enableSNI\",%d,1 with the other CSSLCFG settings, before AT+CMQTTCONNECT." % ctx,
                evidence, command=p.cmd, data={"ctx": ctx, "host": host}))
        missing = []
        auth = to_int(cfg.get("authmode", ("0", None))[0], 0)
        need = {0: (), 1: ("cacert",), 2: ("cacert", "clientcert", "clientkey"), 3: ("clientcert", "clientkey")}
        for k in need.get(auth, ()):
            if k not in cfg:
                missing.append(k)
        uploaded = _uploaded(conv, p.idx)
        notup = []
        if uploaded is not None:
            for k in ("cacert", "clientcert", "clientkey"):
                if k in cfg and cfg[k][0] not in uploaded:
                    notup.append("%s=%s" % (k, cfg[k][0]))
        if missing or notup:
            out.append(Finding(
                "tls-config-incomplete", "error", "SSL context %d is incomplete for authmode %d" % (ctx, auth),
                ("missing: %s. " % ", ".join(missing) if missing else "")
                + ("files not uploaded (not in CCERTDOWN/CCERTLIST): %s." % ", ".join(notup) if notup else ""),
                "upload with AT+CCERTDOWN and set each file with AT+CSSLCFG=\"cacert\"/\"clientcert\"/\"clientkey\","
                "%d,\"<file>\" before CONNECT." % ctx, base_ev, command=p.cmd))
        if sslcfg_x is None:
            out.append(Finding(
                "tls-order", "warning", "no AT+CMQTTSSLCFG before a TLS CONNECT",
                "without AT+CMQTTSSLCFG the modem uses SSL context number = client index (%d); it is also cleared "
                "after every failed CONNECT or DISC." % ctx,
                "send AT+CMQTTSSLCFG=%s,<ctx> after ACCQ and before every CONNECT." % client_of(p),
                base_ev, command=p.cmd))
        late = [x for x in conv.find("+CSSLCFG", "=") if x.idx > p.idx and to_int(x.arg(1)) == ctx]
        if late and not [q for q in conv.find("+CMQTTCONNECT", "=") if q.idx > late[0].idx]:
            out.append(Finding(
                "tls-order", "warning", "SSL context changed after CONNECT",
                "AT+CSSLCFG for context %d was sent after AT+CMQTTCONNECT: it cannot affect that connect." % ctx,
                "configure the SSL context before CMQTTSTART/CONNECT.", [ev_sent(p), ev_sent(late[0])],
                command=late[0].cmd))
        if cfg:
            # record what was checked, for the report
            order = []
            st = [x for x in conv.find("+CMQTTSTART", "") if x.idx < p.idx]
            last_cfg = max(v[1].idx for v in cfg.values())
            if st:
                order.append("CSSLCFG %s CMQTTSTART" % ("before" if last_cfg < st[-1].idx else "AFTER"))
            if sslcfg_x is not None:
                a_ok = a is not None and a.idx < sslcfg_x.idx
                order.append("CMQTTSSLCFG=%s,%d %s ACCQ and before CONNECT" % (client_of(p), ctx,
                                                                              "after" if a_ok else "NOT after"))
            if uploaded is not None:
                order.append("certificate files %s" % ("all uploaded" if not notup else "MISSING: " + ", ".join(notup)))
            out.append(Finding(
                "tls-config", "info", "SSL context %d as configured" % ctx,
                "; ".join("%s=%s" % (k, v[0]) for k, v in sorted(cfg.items())) + "; enableSNI=%s"
                % (sni[0] if sni else "0 (default)") + (". Order checked: " + "; ".join(order) if order else ""),
                "sslversion 4 (all) and authmode 2 (server + client) are right for AWS IoT; enableSNI must be 1.",
                [ev_sent(v[1]) for v in cfg.values()], data={"ctx": ctx, "cfg": {k: v[0] for k, v in cfg.items()}}))
    return out


def _uploaded(conv, before_idx):
    files = set()
    seen = False
    for x in conv.exchanges[:before_idx]:
        if x.name == "+CCERTDOWN" and x.final == "OK":
            files.add(unquote(x.arg(0, "")))
            seen = True
        if x.name == "+CCERTLIST" and x.final == "OK":
            seen = True
            for _, s in x.lines:
                m = re.match(r'^\+CCERTLIST:\s*"?([^"]+)"?', s)
                if m:
                    files.add(m.group(1))
    return files if seen else None


def r_client_id(conv):
    out = []
    for a in conv.find("+CMQTTACCQ", "="):
        cid = unquote(a.arg(1, ""))
        if cid in MANUAL_CLIENT_IDS:
            conn = [p for p in conv.find("+CMQTTCONNECT", "=") if p.idx > a.idx]
            host = host_port(conn[0].arg(1, ""))[0] if conn else ""
            aws = host and "amazonaws.com" in host
            out.append(Finding(
                "client-id-example", "warning" if aws else "info", "client ID is the manual's example %r" % cid,
                "every copy of the example uses this ID; a broker keeps one session per client ID and drops the "
                "older connection when another device connects with the same ID%s."
                % (", and an AWS IoT policy usually allows iot:Connect only for client/<thing name>" if aws else ""),
                "use a unique ID per device (e.g. the IMEI or thing name) allowed by the broker's policy.",
                [ev_sent(a)], command=a.cmd))
    return out


def r_firmware(conv):
    out = []
    revs = []
    for x in conv.exchanges:
        if x.name in ("+CGMR", "+GMR", "I", "+SIMCOMATI"):
            for t, s in x.lines + x.results:
                m = re.match(r"^(?:\+C?GMR:|Revision:)\s*(\S+)", s)
                if m:
                    revs.append((m.group(1), x, t, s))
    bad = [r for r in revs if r[0] in facts.FIRMWARE_NO_SSL]
    refused = [x for x in conv.find("+CSSLCFG", "=") if x.failed()]
    if bad or refused:
        ev = []
        for r in bad or revs[:1]:
            ev += [ev_sent(r[1]), ev_recv(r[2], r[3])]
        for x in refused[:3]:
            ev += [ev_sent(x)] + ev_reply(x)
        if bad:
            cause = ("the module reports firmware %s, a revision known to refuse AT+CSSLCFG (no SSL stack)%s."
                     % (bad[0][0], "; AT+CSSLCFG indeed answered ERROR" if refused else ""))
        else:
            cause = ("AT+CSSLCFG answered ERROR%s: this firmware does not support SSL configuration, or the "
                     "parameter is out of range." % (" on firmware %s" % revs[0][0] if revs else ""))
        out.append(Finding(
            "firmware-no-ssl", "error", "the modem firmware lacks SSL (AT+CSSLCFG refused)", cause,
            facts.FIRMWARE_NO_SSL_FIX, ev, command=refused[0].cmd if refused else None,
            explains=[x.idx for x in refused], data={"revision": (bad or revs or [(None,)])[0][0]}))
    return out


def r_echo(conv):
    out = []
    cmd_echo = [(x, t, s) for x in conv.exchanges for t, s in x.echo if x.data == [] or s in x.cmd or s == ""]
    data_echo = sum(len(d) for x in conv.exchanges if x.echo and x.data for _, d in x.data
                    if any(s and s in d for _, s in x.echo))
    if not cmd_echo and not data_echo:
        return out
    ate0 = [x for x in conv.exchanges if x.cmd.upper().replace(" ", "") in ("ATE0", "ATE0V1")]
    after = [e for e in cmd_echo if not ate0 or e[0].idx > ate0[-1].idx]
    if not after and not data_echo:
        return out
    hidden = [e for e in after if e[0].hidden]
    ev = ["%s -> echoed%s" % (ev_sent(x), " (RECV@%s %r)" % (t, s) if s else " (line overwritten in the log)")
          for x, t, s in after[:4]]
    cause = ("ATE0 was never sent" if not ate0 else "echo came back after ATE0 at %s (the modem rebooted or "
             "ATE1 was restored)" % ate0[-1].stamp())
    cause += (": the modem echoes every command (%d echoed lines here%s)" %
              (len(after), ", %d of them overwritten by the log's terminator (the echo ends in a bare CR)"
               % len(hidden) if hidden else ""))
    if data_echo:
        cause += " and every byte of data entry after '>' (about %d bytes of certificates/payload sent back)" % data_echo
    cause += ". A line parser then sees the command text as a reply line."
    out.append(Finding("echo-on", "warning", "command echo left on", cause,
                       "send ATE0 right after the first AT answers OK (and again after any RDY/reboot).",
                       ev, data={"echo_lines": len(after), "data_echo_bytes": data_echo, "ate0_sent": bool(ate0)}))
    return out


def r_network_order(conv):
    out = []
    netopen = conv.find("+NETOPEN", "")
    ssl = conv.find("+CSSLCFG", "=")
    start = conv.find("+CMQTTSTART", "")
    for n in netopen:
        later = [x for x in ssl if x.idx > n.idx]
        if later:
            out.append(Finding(
                "netopen-before-ssl", "warning", "NETOPEN before the SSL setup",
                "AT+NETOPEN came before AT+CSSLCFG (%s); the working order (SIMCom's MQTTS application note and "
                "the thread's working notes) configures SSL first, then starts the network/MQTT service."
                % later[0].stamp(),
                "configure certificates and CSSLCFG first; NETOPEN is not needed for CMQTT at all.",
                [ev_sent(n), ev_sent(later[0])], command=n.cmd))
    cgact = [x for x in conv.find("+CGACT", "=") if x.arg(0) == "1"]
    manual = netopen + cgact
    if manual and start:
        s23 = [x for x in start if any(e == 23 for _, _, e in x.result_codes())]
        out.append(Finding(
            "pdp-manual", "warning" if s23 else "info",
            "PDP/network opened by hand before CMQTTSTART",
            "AT+CMQTTSTART activates the PDP context itself; %s beforehand is not needed (harmless when START "
            "still answers 0%s)." % (" and ".join(sorted(set(x.cmd.split("=")[0] for x in manual))),
                                    "; here START answered 23 'network is opened'" if s23 else ""),
            "leave PDP activation to AT+CMQTTSTART (keep AT+CGDCONT for the APN); NETOPEN/CGACT are for the "
            "socket (CIPOPEN) stack.",
            [ev_sent(x) for x in manual] + [ev_sent(start[0])], command=manual[0].cmd,
            explains=[x.idx for x in s23]))
    return out


def _gaps(conv):
    """[(gap_ms, before_event_desc, after_exchange, kind)] host-side idle time before each send."""
    gaps = []
    prev_done = None
    hist = []
    urcs = [(u[0], u[1]) for u in conv.urcs if u[0] is not None and u[3] != "body"]
    for x in conv.exchanges:
        if x.t is not None and prev_done is not None and x.t >= prev_done[0] and not _app_paced(hist, x):
            # idle since the last thing received: a URC in between (CONNLOST, NONET...) is what the
            # host reacted to, so the time before it was a wait for the modem, not a sleep
            last = prev_done
            for t, text in urcs:
                if last[0] <= t <= x.t:
                    last = (t, "RECV@%d %s" % (t, text))
            gaps.append((x.t - last[0], last[1], x, "cmd"))
        done = conv.reply_done_t(x)
        if x.prompt_t is not None and x.data and x.data[0][0] is not None:
            gaps.append((x.data[0][0] - x.prompt_t, "RECV@%d >" % x.prompt_t, x, "data"))
        # no reply at all: the next command ends a wait for the modem (a timeout), not a sleep
        prev_done = (done, "RECV@%d %s" % (done, x.final or "(reply)")) if done is not None else None
        hist.append(x)
    return gaps


MONITOR_CMDS = ("AT+CSQ", "AT+CBC", "AT+CGPSINFO", "AT+CPSI?")


def _app_paced(hist, x):
    """Gaps that are the application's rhythm, not a sleep in place of a reply: a poll loop (the
    same query again within the last few commands: registration, signal) and the start of a new
    publish (the batching interval)."""
    if not hist:
        return False
    if x.cmd == hist[-1].cmd or (x.cmd.endswith("?") and x.cmd in [h.cmd for h in hist[-4:]]):
        return True
    if (x.cmd.endswith("?") or x.cmd in MONITOR_CMDS) and any(h.cmd == x.cmd for h in hist):
        return True  # a status query the app repeats on its own timer (signal, cell, clock)
    return x.name == "+CMQTTTOPIC" and hist[-1].name != "+CMQTTCONNECT"


def _is_fixed(gap):
    return gap >= 450 and abs(gap - round(gap / 500.0) * 500) <= 15


def r_fixed_sleeps(conv):
    if not conv.timed():
        return []
    gaps = _gaps(conv)
    fixed = [g for g in gaps if _is_fixed(g[0])]
    idle = [g for g in gaps if not _is_fixed(g[0]) and g[0] >= 3000]
    out = []
    if fixed:
        total = sum(g[0] for g in fixed)
        ev = ["%d ms: %s -> %s" % (g[0], g[1], ("SENT@%d data for %s" % (g[2].data[0][0], g[2].name)) if g[3] == "data"
                                   else ev_sent(g[2])) for g in fixed]
        phase = _mqtt_phase(conv, fixed)
        cause = ("the app sleeps a fixed time after replies instead of sending as soon as the reply is in: "
                 "%d gaps of whole seconds (%s), %d ms in all." %
                 (len(fixed), ", ".join(str(g[0]) for g in fixed), total))
        if phase:
            cause += (" From %s to %s took %d ms, of which %d ms were fixed sleeps; the modem itself answered "
                      "in %d ms, so waiting on the replies would have cost about %d ms."
                      % (phase["from"], phase["to"], phase["elapsed_ms"], phase["sleep_ms"], phase["modem_ms"],
                         phase["elapsed_ms"] - phase["sleep_ms"]))
        cause += " A sleep is also no substitute for the deferred result: it is too long when the modem is fast and too short when CONNECT takes 10 s."
        out.append(Finding(
            "fixed-sleeps", "warning", "fixed sleeps cost %.1f s" % (total / 1000.0), cause,
            "send the next command when the final result (OK/ERROR) or the '>' prompt arrives, and wait for the "
            "named URC (with a timeout) where the result is deferred.", ev,
            data={"total_sleep_ms": total, "count": len(fixed), "gaps_ms": [g[0] for g in fixed], "mqtt_phase": phase}))
    for g in idle:
        out.append(Finding(
            "long-gap", "info", "%.1f s idle before %s" % (g[0] / 1000.0, g[2].cmd),
            "nothing was sent or received for %d ms (app-side work, a long sleep, or an unlogged wait)." % g[0],
            "if this is a wait for the network, wait on +CREG/+CGREG/+CEREG instead of a timer.",
            ["%s -> %s" % (g[1], ev_sent(g[2]))], data={"gap_ms": g[0]}))
    return out


def _mqtt_phase(conv, fixed):
    starts = conv.find("+CMQTTSTART", "")
    conns = conv.find("+CMQTTCONNECT", "=")
    if not starts or not conns or starts[0].t is None or conns[-1].t is None:
        return None
    a = starts[0]
    c = conns[-1]
    end = conv.next_after(c) or c
    end_t = end.t if end is not c else (conv.reply_done_t(c) or c.t)
    sleep = sum(g[0] for g in fixed if a.t < g[2].t <= end_t or (g[3] == "data" and a.t < g[2].data[0][0] <= end_t))
    modem = sum(conv.modem_ms(x) or 0 for x in conv.exchanges[a.idx: end.idx if end is not c else c.idx + 1])
    return {"from": ev_sent(a), "to": ev_sent(end) if end is not c else "CONNECT's reply", "elapsed_ms": end_t - a.t,
            "sleep_ms": sleep, "modem_ms": max(0, modem)}


def r_boot(conv):
    boots = [u for u in conv.urcs if u[3] == "boot"]
    if not boots:
        return []
    rdy_mid = [u for u in boots if u[1] == "RDY" and u[2] > 0]
    if rdy_mid:
        return [Finding("modem-rebooted", "error", "the modem rebooted mid-session (RDY)",
                        "RDY arrived after %d commands: the modem restarted (power dip, PWRKEY, watchdog) and lost "
                        "all state (echo, SSL context, MQTT session)." % (rdy_mid[0][2] + 1),
                        "re-run the whole bring-up after RDY; check the supply during TX bursts.",
                        [ev_recv(u[0], u[1]) for u in rdy_mid])]
    first = conv.exchanges[0] if conv.exchanges else None
    return [Finding(
        "boot-urcs", "info", "boot URCs arrived unasked (%s)" % ", ".join(u[1] for u in boots),
        "the module had just booted: %s are unsolicited (SIM/phonebook ready), not replies to %s."
        % ("/".join(u[1] for u in boots), first.cmd if first else "a command"),
        "treat them as URCs; start the bring-up after RDY (or after AT answers) and do not count them as the "
        "reply.", [ev_recv(u[0], u[1]) for u in boots])]


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
        out.append(Finding("connection-lost", "error", title, cause, fix, ev, command=x.cmd if x else None,
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
        kind, cause, fix = code_facts(x, e)
        n = len(items)
        title = "%s failed%s" % (x.cmd, (": %s (%s)" % (code, meaning)) if code is not None else "")
        if n > 1:
            title += " - %d times" % n
        evidence = [ev_sent(x)] + ev_reply(x)
        if n > 1:
            last = items[-1][0]
            evidence.append("... the same %d more times, the last at %s" % (n - 1, last.stamp()))
        severity = "error" if kind == facts.HOST else "warning"
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


def count_kinds(findings):
    """{kind: count}: a host finding of severity info counts as information."""
    k = {"input": 0, "host": 0, "network": 0, "module": 0, "info": 0}
    for f in findings:
        kind = "info" if f.severity == "info" and f.kind == "host" else f.kind
        k[kind] = k.get(kind, 0) + 1
    return k


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
