"""Rules about the rhythm and set-up of the conversation: echo, network bring-up order, fixed sleeps in place
of waiting for replies, long gaps, boot URCs and reboots."""

from atdoctor.findings import Finding, ev_recv, ev_sent


QUERY_ONLY_OK = ("", "+CSQ", "+CREG", "+CGREG", "+CEREG", "+CPSI", "+COPS", "+CPIN")


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
