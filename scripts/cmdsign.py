#!/usr/bin/env python3
"""Sign a remote command for one device, derive a device's key, check a reply. Written from
firmware/telelogger/FORMAT.md "Remote commands" alone (stdlib only, imports nothing of the
firmware): the fleet tool builds on these functions.

    cmdsign.py sign --key FILE --device ID [--n N] [--ts S] [--chal TOKEN] [--nonce X] CMD [ARGS_JSON]
    cmdsign.py sign --derive MASTER_FILE --device ID ...      # key derived from a fleet master key
    cmdsign.py key --derive MASTER_FILE --device ID           # print the device's secrets hmac_key
    cmdsign.py verify --key FILE --device ID [REPLY_FILE]     # check a reply (default: stdin)

Key files are the user's (a text file holding the key, or a secrets.json with "hmac_key"); a file
tracked by git is refused: keys never come from the repository. n defaults to the current Unix time
in milliseconds (it only has to grow), ts to the current Unix time. Example:

    scripts/cmdsign.py sign --key ~/fleet/ABC123.key --device ABC123 reboot '{"delay_ms": 1000}' \\
        | mosquitto_pub -h broker -t freematics/ABC123/cmd -s

A device without UTC time answers with "chal": sign again with --chal <that value>.
"""
import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

DOMAIN = b"fm-cmd-v2\n"
KEY_DOMAIN = b"fm-cmd-key-v1\n"
MAX_N = 2**53 - 1
PLACEHOLDERS = ("replace-with-32-random-characters",)


FLOATS_AT = "body.args.set."  # config_set values may be numbers with a fraction (standby.voltage_off)


def _no_floats(v, where="body"):
    if isinstance(v, float):
        if not where.startswith(FLOATS_AT):
            raise ValueError("%s: floats are not allowed in commands (use integers)" % where)
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("%s: not a finite number" % where)
    if isinstance(v, dict):
        for k, x in v.items():
            _no_floats(x, "%s.%s" % (where, k))
    elif isinstance(v, (list, tuple)):
        for x in v:
            _no_floats(x, where)


def canonical(body):
    """The body text this tool signs: keys sorted, no whitespace, ASCII (\\uXXXX escapes); numbers
    are integers, except config_set values (args.set.*), written as Python's shortest round-trip
    decimal (11.5)."""
    _no_floats(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _key_bytes(key):
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _mac(key, device_id, direction, body):
    if not device_id or "\n" in device_id:
        raise ValueError("device id: expected a non-empty string without newlines")
    msg = DOMAIN + device_id.encode("utf-8") + b"\n" + direction + b"\n" + body
    return hmac.new(_key_bytes(key), msg, hashlib.sha256).hexdigest().encode("ascii")


def seal(key, device_id, body_bytes, direction=b"req"):
    if not body_bytes.endswith(b"}") or len(body_bytes) < 3:
        raise ValueError("a body is a non-empty JSON object text ending in }")
    return body_bytes[:-1] + b',"mac":"' + _mac(key, device_id, direction, body_bytes) + b'"}'


def sign(key, device_id, body):
    """body dict {"cmd", "args"?, "n", "ts"?, "chal"?, "nonce"?} -> request payload bytes."""
    return seal(key, device_id, canonical(body))


def verify_reply(key, device_id, payload):
    """An authentic reply of `device_id` -> its dict; ValueError otherwise."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    tail = payload[-74:]
    if len(payload) < 76 or not tail.startswith(b',"mac":"') or not tail.endswith(b'"}'):
        raise ValueError("not a sealed reply (no mac at its end)")
    body = payload[:-74] + b"}"
    if not hmac.compare_digest(tail[8:72], _mac(key, device_id, b"rep", body)):
        raise ValueError("reply mac mismatch: wrong key, wrong device, or altered")
    return json.loads(body)


def derive_key(master, device_id):
    """The device's hmac_key text: lowercase hex HMAC-SHA256(master, "fm-cmd-key-v1\\n" + id)."""
    m = hmac.new(_key_bytes(master), KEY_DOMAIN + device_id.encode("utf-8"), hashlib.sha256)
    return m.hexdigest()


def _tracked_by_git(path):
    d, name = os.path.split(os.path.abspath(path))
    try:
        r = subprocess.run(["git", "-C", d, "ls-files", "--error-unmatch", name], capture_output=True)
    except OSError:  # no git: nothing to check against
        return False
    return r.returncode == 0


def read_key(path, what="key"):
    """The key text of a key file: the file's text stripped, or "hmac_key" of a secrets.json."""
    if _tracked_by_git(path):
        raise ValueError("%s: tracked by git; keep %s files out of the repository" % (path, what))
    with open(path, "rb") as f:
        raw = f.read().strip()
    text = raw.decode("utf-8")
    if text.startswith("{"):
        text = json.loads(text).get("hmac_key") or ""
    if not text or text in PLACEHOLDERS:
        raise ValueError("%s: no usable %s in the file" % (path, what))
    return text


def _key_of(a):
    if a.derive:
        return derive_key(read_key(a.derive, "master key"), a.device)
    return read_key(a.key)


def _out(data):
    sys.stdout.buffer.write(data)
    if sys.stdout.isatty():  # a payload ends with "}": no newline when piped to mosquitto_pub -s
        sys.stdout.buffer.write(b"\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="op", required=True)
    ps = sub.add_parser("sign", help="sign a command")
    pk = sub.add_parser("key", help="print the hmac_key derived for a device")
    pv = sub.add_parser("verify", help="check a reply's mac and print it")
    for p in (ps, pv):
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("--key", help="file holding the device's key (text, or a secrets.json)")
        g.add_argument("--derive", metavar="MASTER_FILE", help="derive the device's key from this fleet master key file")
    pk.add_argument("--derive", metavar="MASTER_FILE", required=True)
    for p in (ps, pk, pv):
        p.add_argument("--device", required=True, help="the device id (as in its topics)")
    ps.add_argument("--n", type=int, help="counter above the device's last accepted one (default: Unix ms now)")
    ps.add_argument("--ts", type=int, help="Unix seconds (default: now)")
    ps.add_argument("--chal", help="the challenge of the device's last reply (needed while it has no UTC)")
    ps.add_argument("--nonce", help="any string up to 64 characters, echoed in the reply")
    ps.add_argument("cmd")
    ps.add_argument("args", nargs="?", default="{}", help="JSON object of arguments")
    pv.add_argument("reply", nargs="?", help="file holding the reply payload (default: stdin)")
    a = ap.parse_args(argv)
    try:
        if a.op == "key":
            print(derive_key(read_key(a.derive, "master key"), a.device))
            return 0
        key = _key_of(a)
        if a.op == "verify":
            data = open(a.reply, "rb").read() if a.reply else sys.stdin.buffer.read()
            print(json.dumps(verify_reply(key, a.device, data.rstrip(b"\r\n")), indent=1, sort_keys=True))
            return 0
        args = json.loads(a.args)
        if not isinstance(args, dict):
            raise ValueError("args: expected a JSON object, got %s" % a.args)
        now = time.time()
        n = a.n if a.n is not None else int(now * 1000)
        if not 1 <= n <= MAX_N:
            raise ValueError("--n: expected 1..%d" % MAX_N)
        body = {"cmd": a.cmd, "args": args, "n": n, "ts": a.ts if a.ts is not None else int(now)}
        if a.chal:
            body["chal"] = a.chal
        if a.nonce:
            body["nonce"] = a.nonce
        _out(sign(key, a.device, body))
        return 0
    except (OSError, ValueError) as e:
        print("cmdsign: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
