"""Rebuild the AT conversation (commands, their replies, deferred results, URCs, app prints) from events."""

import re

from atdoctor import facts
from atdoctor.parse import declared_length
from atdoctor.redact import CERT_CMDS, body_secrets, redact_cmd, redact_reply

FINAL_RE = re.compile(r"^(OK|ERROR|NO CARRIER|\+CME ERROR:.*|\+CMS ERROR:.*)$")
INFO_RE = re.compile(r"^\+([A-Z0-9]+):\s?(.*)$", re.I)
CMD_PARTS_RE = re.compile(r"^AT(?:([+&#$%*^][A-Z0-9]+)|([A-Z]\d*))?(=\?|=|\?)?(.*)$", re.I)

# Commands whose real outcome arrives later as "+NAME: [<idx>,]<err>".  value: regex of that result's value.
ASYNC = {
    "+CMQTTSTART": r"^(\d+)$",
    "+CMQTTSTOP": r"^(\d+)$",
    "+NETOPEN": r"^(\d+)$",
    "+NETCLOSE": r"^(\d+)$",
    "+CMQTTCONNECT": r"^(\d+),(\d+)$",
    "+CMQTTDISC": r"^(\d+),(\d+)$",
    "+CMQTTPUB": r"^(\d+),(\d+)$",
    "+CMQTTSUB": r"^(\d+),(\d+)$",
    "+CMQTTUNSUB": r"^(\d+),(\d+)$",
}
# Which forms of the command are asynchronous ('=' write, '' exec)
ASYNC_OPS = {
    "+CMQTTSTART": ("",), "+CMQTTSTOP": ("",), "+NETOPEN": ("",), "+NETCLOSE": ("",),
    "+CMQTTCONNECT": ("=",), "+CMQTTDISC": ("=",), "+CMQTTPUB": ("=",), "+CMQTTSUB": ("=",),
    "+CMQTTUNSUB": ("=",),
}
# Commands that answer '>' and then take raw bytes
PROMPT_CMDS = ("+CCERTDOWN", "+CMQTTTOPIC", "+CMQTTPAYLOAD", "+CMQTTSUBTOPIC", "+CMQTTUNSUBTOPIC",
               "+CMQTTWILLTOPIC", "+CMQTTWILLMSG", "+CMQTTSUB", "+CMQTTUNSUB", "+CIPSEND", "+CMGS")
# Commands whose reply is free text (no "+NAME:" prefix)
FREE_TEXT_CMDS = ("I", "+GMR", "+CGMR", "+GMM", "+CGMM", "+GMI", "+CGMI", "+GSN", "+CGSN", "+CIMI",
                  "+SIMCOMATI", "+CICCID")
URC_PREFIXES = ("+CMQTTRXSTART:", "+CMQTTRXTOPIC:", "+CMQTTRXPAYLOAD:", "+CMQTTRXEND:", "+CMQTTCONNLOST:",
                "+CMQTTNONET", "+CMQTTPING:", "+CGEV:", "+CIPEVENT:", "+CPIN:", "+CTZV:", "*ATREADY",
                "+CREG:", "+CGREG:", "+CEREG:", "+CNTP:", "+CLIP:", "+CMTI:", "+CDS:")
FORUM_ARTIFACTS = ("Code: Select all",)
BOOT = facts.BOOT_URCS


def split_args(s):
    out, cur, q = [], "", False
    for ch in s:
        if ch == '"':
            q = not q
        if ch == "," and not q:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip() or out:
        out.append(cur.strip())
    return out


def unquote(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return s


def to_int(s, default=None):
    try:
        return int(str(s).strip())
    except (TypeError, ValueError):
        return default


class Exchange:
    """One command and everything that came back for it."""

    def __init__(self, idx, ev):
        self.idx = idx
        self.raw_cmd = ev["text"]  # as sent: never shown (it may hold a password)
        self.cmd, self.secrets = redact_cmd(ev["text"])  # what the report shows
        self.t = ev["t"]
        self.line = ev["line"]
        m = CMD_PARTS_RE.match(self.cmd)
        if m:
            self.name = (m.group(1) or m.group(2) or "").upper()
            self.op = m.group(3) or ""
            self.args = split_args(m.group(4)) if self.op == "=" else []
        else:
            self.name, self.op, self.args = "", "", []
        self.echo = []  # (t, text)
        self.prompt_t = None
        self.data = []  # (t, text) bytes sent after the prompt
        self.data_raw = []  # the exact bytes of each data piece, when the log kept them (else None)
        self.lines = []  # (t, text) intermediate reply lines
        self.results = []  # (t, text) "+NAME: ..." result lines of this command (immediate or deferred)
        self.final = None
        self.final_t = None
        self.notes_after = []  # app prints after this command was sent
        self.deferred_pending = self.is_async()
        self.lost_in_reboot = None  # newest exchange index when a RDY ended the wait for its deferred result
        self.wait_ended = None  # newest exchange index when its result became moot (reboot, superseded, STOP/REL)
        self.hidden = []  # (t, text) lines whose head was overwritten in the log
        self.result_after = None  # index of the newest exchange when the first result line arrived
        self.prompt_line = None

    def is_async(self):
        return self.name in ASYNC and self.op in ASYNC_OPS.get(self.name, ())

    def expects_prompt(self):
        if self.op != "=" or self.name not in PROMPT_CMDS:
            return False
        if self.name in ("+CMQTTSUB", "+CMQTTUNSUB"):  # only the <idx>,<len>,<qos|dup> form prompts
            return len(self.args) >= 3 if self.name == "+CMQTTSUB" else len(self.args) >= 3
        return True

    def arg(self, i, default=None):
        return self.args[i] if i < len(self.args) else default

    def failed(self):
        return self.final is not None and self.final != "OK"

    def result_codes(self):
        """[(t, text, err)] of this command's "+NAME:" lines whose last number is an error code."""
        out = []
        if not self.is_async() and (self.final is None or self.final == "OK"):
            return out  # "+CSQ: 99,99" + OK, "+CMQTTDISC: 0,1" to DISC?: information, not an error code
        pat = ASYNC.get(self.name, r"^(?:\d+,)?(\d+)$")
        for t, text in self.results:
            m = INFO_RE.match(text)
            if not m:
                continue
            v = re.match(pat, (m.group(2).split() or [""])[0])
            if v:
                out.append((t, text, int(v.groups()[-1])))
        return out

    def declared(self):
        """Bytes this command announced for its data entry, or None."""
        return declared_length(self.raw_cmd)

    def data_len(self):
        return sum(len(r) if r is not None else len(s.encode()) for (_, s), r in zip(self.data, self.data_raw))

    def secret_data(self):
        return self.name in CERT_CMDS

    def shown_data(self):
        if self.secret_data():
            return [(t, "<%d bytes of certificate/key data, not shown>" % (len(r) if r is not None else len(s.encode())))
                    for (t, s), r in zip(self.data, self.data_raw)]
        return self.data

    def shown_echo(self):
        if self.secret_data():
            return [(t, s if s in self.cmd else "<echo of certificate/key data>") for t, s in self.echo]
        return self.echo

    def stamp(self):
        return "SENT@%s" % self.t if self.t is not None else "line %d" % self.line

    def to_dict(self):
        return {
            "idx": self.idx, "cmd": self.cmd, "t": self.t, "line": self.line, "echo": self.shown_echo(),
            "prompt_t": self.prompt_t, "data": self.shown_data(), "data_bytes": self.data_len() if self.data else 0,
            "lines": self.lines, "results": self.results,
            "final": self.final, "final_t": self.final_t, "notes_after": self.notes_after,
        }


class Conversation:
    def __init__(self, events, fmt):
        self.fmt = fmt
        self.exchanges = []
        self.urcs = []  # (t, text, after_idx, kind) kind: boot|urc|deferred|stray|body
        self.notes = []  # (text, after_idx) app prints
        self.prose = []  # (text, line) text around the log that is not the application's (a forum post)
        self.secrets = []  # secret values seen (credentials, key material): scrubbed from every output
        self.pending = {}  # "+NAME" -> [Exchange] awaiting a deferred result
        self.late_results = []  # (exchange, t, text): deferred results that came after other commands
        self._rx_body = 0  # bytes of a +CMQTTRX topic/payload still to come
        for ev in events:
            try:
                self._feed(ev)
            except Exception as e:  # never let a strange line stop the rebuild
                self.notes.append(("(doctor could not place %r: %s)" % (ev.get("text"), e), self._cur_idx()))

    # -------------------------------------------------------------- helpers
    def _cur(self):
        return self.exchanges[-1] if self.exchanges else None

    def _cur_idx(self):
        return len(self.exchanges) - 1

    def _feed(self, ev):
        k = ev["kind"]
        if k == "app" and "glue" in ev and ev["glue"] is None:
            self.prose.append((ev["text"], ev["line"]))
        elif k == "app":
            self._note(ev["text"])
        elif k == "cmd":
            x = Exchange(len(self.exchanges), ev)
            self.exchanges.append(x)
            self.secrets += x.secrets
            if x.cmd == "AT+CMQTTSTOP" or (x.name == "+CMQTTREL" and x.op == "="):
                self._end_waits()  # the host tears the client/service down: owed results are moot
            if x.is_async():
                self.pending.setdefault(x.name, []).append(x)
        elif k == "data":
            x = self._cur()
            if x is None:
                self._note(ev["text"])
            else:
                x.data.append((ev["t"], ev["text"]))
                x.data_raw.append(ev.get("raw"))
                if x.secret_data():
                    self.secrets += body_secrets(ev["text"])
        else:
            self._rx(ev)

    def _note(self, text):
        self.notes.append((text, self._cur_idx()))
        x = self._cur()
        if x is not None:
            x.notes_after.append(text)

    def _rx(self, ev):
        if ev.get("body"):  # an incoming message chunk, read by its announced length
            self._rx_body = 0
            self.urcs.append((ev["t"], ev["text"], self._cur_idx(), "body"))
            return
        text, found = redact_reply(ev["text"])
        self.secrets += found
        t = ev["t"]
        x = self._cur()
        plain = ev.get("plain", False)
        if self._rx_body > 0 and text.startswith("+CMQTTRX"):
            self._rx_body = 0
        if self._rx_body > 0:  # body of an incoming message, counted by bytes
            self._rx_body -= len(text.encode()) + 1
            self.urcs.append((t, text, self._cur_idx(), "body"))
            return
        if text == "RDY" and self.pending:
            # the module rebooted: every deferred result still owed is lost with its session, and
            # must not be paired with the results of the commands sent after the reboot
            for lst in self.pending.values():
                for p in lst:
                    p.lost_in_reboot = self._cur_idx()
            self._end_waits()
        if ev.get("hidden"):
            if x is not None:
                x.hidden.append((t, text))
                if x.final is None and (text == "" or x.raw_cmd.endswith(text)):
                    x.echo.append((t, text if x.cmd.endswith(text) else x.cmd))
                    return
            if text == "":
                return
        if x is not None and x.final is None:
            # echo of the command line, or of the data sent after the prompt
            if text == x.raw_cmd and not x.lines and not x.results and (not plain or ev.get("echo")):
                x.echo.append((t, x.cmd))
                return
            if x.data and not plain and any(text in d for _, d in x.data) and not FINAL_RE.match(text):
                x.echo.append((t, text))
                return
            if text.startswith(">") and x.expects_prompt() and x.prompt_t is None:
                x.prompt_t = t
                x.prompt_line = ev["line"]
                rest = text[1:]
                if rest:
                    if plain:
                        x.data.append((t, rest))
                        x.data_raw.append(None)
                    else:
                        x.echo.append((t, rest))
                return
        if FINAL_RE.match(text):
            if x is not None and x.final is None:
                x.final, x.final_t = text, t
                if text != "OK":
                    self._drop_pending(x)
            else:
                self.urcs.append((t, text, self._cur_idx(), "stray"))
            return
        m = INFO_RE.match(text)
        name = "+" + m.group(1).upper() if m else None
        if name and x is not None and x.op == "?" and x.name == name and x.final is None:
            x.lines.append((t, text))
            return
        value = (m.group(2).split() or [""])[0] if m else ""
        if name in self.pending and re.match(ASYNC[name], value):
            owner = self._resolve(name, value, x)
            if owner is not None:
                owner.results.append((t, text))
                if owner.result_after is None:
                    owner.result_after = self._cur_idx()
                if owner is not x:
                    self.late_results.append((owner, t, text))
                    self.urcs.append((t, text, self._cur_idx(), "deferred"))
                return
        if name and x is not None and name == x.name:
            x.results.append((t, text))
            if x.result_after is None:
                x.result_after = self._cur_idx()
            return
        if text in BOOT or text.startswith(URC_PREFIXES) or (name and name.startswith("+CMQTT")):
            if text.startswith(("+CMQTTRXTOPIC:", "+CMQTTRXPAYLOAD:")):
                self._rx_body = to_int(text.split(",")[-1], 0)
            kind = "boot" if text in BOOT else "urc"
            self.urcs.append((t, text, self._cur_idx(), kind))
            return
        if x is not None and x.final is None:
            free = x.name in FREE_TEXT_CMDS and not x.results and text not in FORUM_ARTIFACTS
            if plain and not name and not free and not re.match(r"^[\w.\-]+$", text):
                self._note(text)  # prose in a pasted capture
                return
            x.lines.append((t, text))
            return
        if plain:
            self._note(text)
        else:
            self.urcs.append((t, text, self._cur_idx(), "stray"))

    def _resolve(self, name, value, cur):
        """The command a deferred result answers. A client runs one asynchronous operation at a
        time, so it is the NEWEST waiting command of that name for that client; older ones still
        waiting were superseded (their result never came: timeout, service restarted) and stop
        waiting too, so a long log's results do not shift onto the wrong commands."""
        waiting = self.pending.get(name) or []
        idx = value.split(",")[0] if "," in value else None
        match = [x for x in waiting if idx is None or x.arg(0) in (None, idx) or name in ("+CMQTTSTART", "+CMQTTSTOP")]
        if not match:
            return None
        for x in match:
            waiting.remove(x)
            x.deferred_pending = False
            if x is not match[-1]:
                x.wait_ended = self._cur_idx()
        if not waiting:
            self.pending.pop(name, None)
        return match[-1]

    def _end_waits(self, keep=None):
        """Every deferred result still owed is moot from here (reboot, the host tearing the client
        down): none of them may be paired with a later result or blamed for a later 14."""
        for lst in self.pending.values():
            for p in lst:
                if p is not keep:
                    p.deferred_pending = False
                    p.wait_ended = self._cur_idx()
        self.pending = {k: [p for p in v if p is keep] for k, v in self.pending.items() if keep in v}

    def _drop_pending(self, x):
        lst = self.pending.get(x.name)
        if lst and x in lst:
            lst.remove(x)
            x.deferred_pending = False
            if not lst:
                self.pending.pop(x.name, None)

    # -------------------------------------------------------------- queries used by rules
    def find(self, name, op=None):
        return [x for x in self.exchanges if x.name == name and (op is None or x.op == op)]

    def next_after(self, x):
        return self.exchanges[x.idx + 1] if x.idx + 1 < len(self.exchanges) else None

    def first_result_t(self, x):
        return x.results[0][0] if x.results else None

    def reply_done_t(self, x):
        """When the modem finished answering x (final code or the last reply line), or None."""
        ts = [t for t, _ in x.lines + x.results + x.echo if t is not None]
        if x.final_t is not None:
            ts.append(x.final_t)
        if x.prompt_t is not None:
            ts.append(x.prompt_t)
        return max(ts) if ts else None

    def modem_ms(self, x):
        """Time the modem spent answering x (prompt latency + reply after the data), excluding host delays."""
        done = self.reply_done_t(x)
        if done is None or x.t is None or done < x.t:
            return None
        if x.prompt_t is not None and x.data and x.data[0][0] is not None and x.data[0][0] >= x.prompt_t:
            return max(0, done - x.t - (x.data[0][0] - x.prompt_t))
        return done - x.t

    def timed(self):
        return any(x.t is not None for x in self.exchanges)
