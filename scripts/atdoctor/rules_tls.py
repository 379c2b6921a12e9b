"""Rules about TLS and identity: server_type vs port, SNI, the SSL context and its certificates, the manual's
example client id, module firmware without SSL."""

import re

from atdoctor import facts
from atdoctor.conversation import to_int, unquote
from atdoctor.findings import Finding, client_of, ev_recv, ev_reply, ev_sent, host_port


CLOUD_HOSTS = ("amazonaws.com", "azure-devices.net", "hivemq.cloud", "emqxsl", "googleapis.com",
               "cloudmqtt", "flespi.io", "thingsboard.cloud", "s1.eu.hivemq", "iot.")


MANUAL_CLIENT_IDS = ("SIMCom_client01", "SIMCom_client02", "client test0")


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
