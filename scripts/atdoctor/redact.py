"""Secrets never leave the doctor: passwords, PINs and keys are masked in every command, reply, echo and
app print it shows, and certificate/key bodies are never printed or dumped.

Which arguments are secret is protocol data (SIM7600 manual V3.00 and 3GPP TS 27.007):
  AT+CMQTTCONNECT=<idx>,"<server>",<keepalive>,<clean>[,"<user>"[,"<password>"]]
  AT+CGAUTH=<cid>,<auth_type>[,"<password>"[,"<user>"]]
  AT+CPIN="<pin>"[,"<new pin>"]  AT+CPIN2  AT+CPWD=<fac>,"<old>","<new>"  AT+CLCK=<fac>,<mode>[,"<passwd>"]
  AT+CSSLCFG="keypwd",<ctx>,"<password>"   AT+CMQTTCFG="aliauth",<idx>,"<product>","<device>","<secret>"
  AT+CCERTDOWN="<file>",<len>: the data after '>' is a certificate or a private key.
"""

import re

MASK = "***"
# "+NAME" -> (indexes of secret arguments) in the write form; replies with the same layout use the same table
_SECRET_ARGS = {"+CMQTTCONNECT": (4, 5), "+CGAUTH": (2, 3), "+CPIN": (0, 1), "+CPIN2": (0, 1), "+CPWD": (1, 2),
                "+CLCK": (2,)}
_KEYED = {("+CSSLCFG", "keypwd"): (2,), ("+CMQTTCFG", "aliauth"): (2, 3, 4)}
# read replies that carry a secret: "+CMQTTCONNECT: 0,"tcp://h",60,1,"user","pw"", "+CGAUTH: 1,1,"pw","user""
_REPLY_ARGS = {"+CMQTTCONNECT": (4, 5), "+CGAUTH": (2, 3), "+CSSLCFG": (9,)}
CERT_CMDS = ("+CCERTDOWN",)
_WRITE_RE = re.compile(r"^(AT)(\+[A-Z0-9]+)(=)(.*)$", re.I)
_REPLY_RE = re.compile(r"^(\+[A-Z0-9]+)(:\s?)(.*)$", re.I)
_B64_RE = re.compile(r"[A-Za-z0-9+/=]{60,}")


def _split(s):
    out, cur, q = [], "", False
    for ch in s:
        if ch == '"':
            q = not q
        if ch == "," and not q:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _unq(s):
    s = s.strip()
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _mask_args(args, idxs, found):
    for i in idxs:
        if i < len(args) and args[i].strip():
            v = _unq(args[i])
            if v:
                found.append(v)
            args[i] = '"%s"' % MASK if args[i].strip().startswith('"') else MASK
    return args


def secret_args(name, args):
    """Indexes of the secret arguments of AT<name>=<args>."""
    idxs = _SECRET_ARGS.get(name, ())
    if args:
        idxs = idxs + _KEYED.get((name, _unq(args[0]).lower()), ())
    return idxs


def redact_cmd(cmd):
    """(shown command, [secret values]) for one command line."""
    m = _WRITE_RE.match(cmd)
    if not m:
        return cmd, []
    name = m.group(2).upper()
    args = _split(m.group(4))
    idxs = secret_args(name, args)
    if not idxs:
        return cmd, []
    found = []
    args = _mask_args(args, idxs, found)
    return m.group(1) + m.group(2) + m.group(3) + ",".join(args), found


def redact_reply(text):
    """(shown reply line, [secret values]) for a "+NAME: ..." line that lists credentials."""
    m = _REPLY_RE.match(text)
    if not m:
        return text, []
    idxs = _REPLY_ARGS.get(m.group(1).upper())
    if not idxs:
        return text, []
    found = []
    args = _mask_args(_split(m.group(3)), idxs, found)
    return m.group(1) + m.group(2) + ",".join(args), found


def body_secrets(data):
    """Pieces of a certificate/key body worth scrubbing wherever they show up (echo, stray lines)."""
    return [s.strip() for s in data.replace("\r", "\n").split("\n") if len(s.strip()) >= 8]


class Scrubber:
    """Replaces every known secret value (and long base64 runs: key material) in output text."""

    def __init__(self, secrets=()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def text(self, s):
        if not isinstance(s, str):
            return s
        for v in self.secrets:
            if v in s:
                s = s.replace(v, MASK)
        return _B64_RE.sub("<key material not shown>", s)

    def tree(self, obj):
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self.tree(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.tree(v) for v in obj]
        return obj
