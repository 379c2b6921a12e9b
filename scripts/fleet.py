#!/usr/bin/env python3
"""The fleet side of remote commands: sign a command for every device of a list, publish it through
the broker, wait for the signed replies, print one line per device and a summary table.

    fleet.py --devices FILE send CMD [ARGS_JSON]          # any command (FORMAT.md "Remote commands")
    fleet.py --devices FILE config get [KEY]
    fleet.py --devices FILE config set KEY=VALUE [KEY=VALUE ...]
    fleet.py --devices FILE dtc read
    fleet.py --devices FILE dtc clear --confirm
    fleet.py ota BUNDLE_OR_BUILD --devices FILE [--version V]  # OTA update (FORMAT.md "OTA updates")
    fleet.py bundle BUILD --version V [--out DIR]          # an OTA bundle folder from a make build

Common options: --broker HOST[:PORT] (default 127.0.0.1:1883), --tls, --ca FILE, --username NAME,
--password-file FILE, --prefix P (default freematics), --master FILE (the fleet master key: each
device's key is derived from it, see cmdsign.py), --timeout S (default 30), --device ID (only these),
--json (one JSON line per device instead of the text lines and table).

The device list (CSV with a header row, or JSON: a list of objects, or {"defaults": {...},
"devices": [...]}) has per device:
    id             the device id (as in its topics)
    key            a file holding the device's hmac_key (text, or its secrets.json), or
    derive         a master key file the device's key is derived from (else --master)
    host, port, tls, ca, username, password_file, prefix    optional broker overrides
Paths are relative to the list's folder. Keys are only ever read from the files named there (a file
tracked by git is refused, as by cmdsign.py): the list itself holds no key.

VALUE in `config set` is JSON when it parses as JSON (60000, true, null, {"0C": 1000}, "text"),
else the text itself (encoding=json, broker.host=mqtt.my-fleet.net). A device that has no UTC time
yet answers with a challenge: the command is signed again with it and sent once more.
`ota`: BUNDLE_OR_BUILD is a bundle folder (`fleet.py bundle`, scripts/ota_bundle.py) or a `make build`
output (then --version V makes the bundle on the fly). Per device: ota_begin (signed), the manifest
chunks, ota_status, the chunks its `need` lists, again until `ready`, then ota_commit; with --wait S
the tool then waits up to S seconds for a status of the rebooted device that reports the version.
Progress per device (rich). A device fails when it refuses (the reason is printed), stops making
progress, or does not answer.
Exit status: 0 when every device answered ok, 1 when any failed, did not answer or sits behind a
broker that cannot be reached, 2 on a usage error (command line, device list, key file).
"""
import argparse
import csv
import json
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cmdsign  # noqa: E402  (the signer written from FORMAT.md: same project)

NO_UTC = "device has no UTC time yet"
FIELDS = ("id", "key", "derive", "host", "port", "tls", "ca", "username", "password_file", "prefix")


class UsageError(Exception):
    pass


# ------------------------------------------------------------------ the device list
def _bool(v):
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("", "0", "false", "no", "off"):
        return False
    raise UsageError("tls: expected true or false, got %r" % v)


def load_devices(path):
    """The device list -> [dict with the FIELDS present]; UsageError naming the row and column."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageError("device list %s: %s" % (path, e.strerror or e))
    base = os.path.dirname(os.path.abspath(path))
    rows = []
    defaults = {}
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise UsageError("device list %s: bad JSON (%s)" % (path, e))
        if isinstance(data, dict):
            defaults = data.get("defaults") or {}
            data = data.get("devices")
        if not isinstance(data, list):
            raise UsageError('device list %s: expected a list of devices or {"devices": [...]}' % path)
        rows = data
    else:
        rows = list(csv.DictReader([ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]))
    out = []
    seen = set()
    for i, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise UsageError("device list %s, device %d: expected an object" % (path, i))
        d = dict(defaults)
        d.update({k.strip(): v for k, v in r.items() if k is not None and v not in (None, "")})
        unknown = [k for k in d if k not in FIELDS]
        if unknown:
            raise UsageError("device list %s, device %d: unknown column %s (known: %s)" % (
                path, i, unknown[0], ", ".join(FIELDS)))
        dev = str(d.get("id", "")).strip()
        if not dev or "\n" in dev or "/" in dev or "+" in dev or "#" in dev:
            raise UsageError("device list %s, device %d: id: expected a device id, got %r" % (path, i, dev))
        if dev in seen:
            raise UsageError("device list %s: device %s listed twice" % (path, dev))
        seen.add(dev)
        d["id"] = dev
        for k in ("key", "derive", "ca", "password_file"):
            if k in d:
                d[k] = os.path.join(base, os.path.expanduser(str(d[k])))
        if "port" in d:
            try:
                d["port"] = int(d["port"])
            except ValueError:
                raise UsageError("device list %s, device %s: port: expected a number, got %r" % (path, dev, d["port"]))
        if "tls" in d:
            d["tls"] = _bool(d["tls"])
        out.append(d)
    if not out:
        raise UsageError("device list %s: no devices" % path)
    return out


def device_key(d, master=None):
    """The device's hmac_key text, from its key file or derived from a master key file."""
    try:
        if d.get("key"):
            return cmdsign.read_key(d["key"])
        m = d.get("derive") or master
        if not m:
            raise UsageError("device %s: no key: give a key file (column key), a master key file (column derive) "
                             "or --master" % d["id"])
        return cmdsign.derive_key(cmdsign.read_key(m, "master key"), d["id"])
    except (OSError, ValueError) as e:
        raise UsageError("device %s: %s" % (d["id"], e))


# ------------------------------------------------------------------ commands
def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_command(a):
    """argparse namespace -> (cmd, args dict)."""
    if a.op == "send":
        try:
            args = json.loads(a.args)
        except ValueError as e:
            raise UsageError("ARGS_JSON: bad JSON (%s)" % e)
        if not isinstance(args, dict):
            raise UsageError("ARGS_JSON: expected a JSON object, got %s" % a.args)
        return a.cmd, args
    if a.op == "config":
        if a.what == "get":
            if len(a.items) > 1:
                raise UsageError("config get takes one KEY (or none: the whole config)")
            return "config_get", ({"key": a.items[0]} if a.items else {})
        if not a.items:
            raise UsageError("config set needs KEY=VALUE")
        sets = {}
        for it in a.items:
            k, eq, v = it.partition("=")
            if not eq or not k:
                raise UsageError("config set: expected KEY=VALUE, got %r" % it)
            sets[k.strip()] = parse_value(v)
        return "config_set", {"set": sets}
    if a.op == "dtc":
        if a.what == "read":
            return "dtc_read", {}
        if not a.confirm:
            raise UsageError("dtc clear erases the stored and pending codes, freeze frames and readiness monitors "
                             "of every listed car: add --confirm")
        return "dtc_clear", {"confirm": True}
    raise UsageError("unknown operation %s" % a.op)


class Signer:
    """n strictly increasing within this run (the current Unix ms, at least the previous n + 1)."""

    def __init__(self):
        self.last = 0
        self.lock = threading.Lock()

    def next_n(self):
        with self.lock:
            self.last = max(int(time.time() * 1000), self.last + 1)
            return self.last

    def payload(self, key, dev, cmd, args, chal=None):
        body = {"cmd": cmd, "args": args, "n": self.next_n(), "ts": int(time.time())}
        if chal:
            body["chal"] = chal
        p = cmdsign.sign(key, dev, body)
        return p, p[-66:-50].decode()  # the reply's "re": the first 16 hex digits of the mac


# ------------------------------------------------------------------ MQTT
def _broker_of(d, a):
    host, _, port = (d.get("host") or a.broker).partition(":")
    if not d.get("host") and not port:
        port = None
    port = d.get("port") or (int(port) if port else (8883 if d.get("tls", a.tls) else 1883))
    return (host, int(port), bool(d.get("tls", a.tls)), d.get("ca") or a.ca, d.get("username") or a.username,
            d.get("password_file") or a.password_file)


def _client(broker, topics, inbox, tag):
    """A connected paho client subscribed to `topics` (QoS 1), every message put on `inbox` as
    (topic, payload); UsageError when the broker cannot be reached."""
    import paho.mqtt.client as mqtt

    host, port, tls, ca, user, pw_file = broker
    subscribed = threading.Event()
    connected = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fleet-%d-%d" % (os.getpid(), tag),
                    clean_session=True)
    if user:
        pw = None
        if pw_file:
            with open(pw_file, encoding="utf-8") as f:
                pw = f.read().strip()
        c.username_pw_set(user, pw)
    if tls:
        c.tls_set(ca_certs=ca)

    def on_connect(client, userdata, flags, rc, props=None):
        if rc == 0:
            client.subscribe([(t, 1) for t in topics])
            connected.set()

    c.on_connect = on_connect
    c.on_subscribe = lambda *x: subscribed.set()
    c.on_message = lambda client, userdata, msg: inbox.put((msg.topic, bytes(msg.payload)))
    try:
        c.connect(host, port, 30)
    except OSError as e:
        raise UsageError("broker %s:%d: %s" % (host, port, e))
    c.loop_start()
    if not (connected.wait(10) and subscribed.wait(10)):
        c.loop_stop()
        raise UsageError("broker %s:%d: no connection/subscription within 10 s" % (host, port))
    return c


def run_group(broker, devs, cmd, args, a, signer, on_result):
    """Devices behind one broker: subscribe to their replies, publish, collect until each answered
    or the timeout. on_result(dev, outcome dict)."""
    inbox = queue.Queue()
    prefix = {d["id"]: d.get("prefix") or a.prefix for d in devs}
    topics = {"%s/%s/reply" % (prefix[d["id"]], d["id"]): d for d in devs}
    c = _client(broker, topics, inbox, id(devs))
    try:
        state = {}
        for d in devs:
            p, re_ = signer.payload(d["_key"], d["id"], cmd, args)
            state[d["id"]] = {"re": re_, "t0": time.monotonic(), "chal_sent": False}
            c.publish("%s/%s/cmd" % (prefix[d["id"]], d["id"]), p, qos=1).wait_for_publish(10)
        deadline = time.monotonic() + a.timeout
        while state and time.monotonic() < deadline:
            try:
                topic, payload = inbox.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            d = topics.get(topic)
            if d is None or d["id"] not in state:
                continue
            s = state[d["id"]]
            try:
                r = cmdsign.verify_reply(d["_key"], d["id"], payload)
            except ValueError:
                continue  # not an authentic reply of this device: ignored
            if r.get("re") != s["re"]:
                continue  # a reply to something else
            if r.get("ok") is False and NO_UTC in str(r.get("error")) and r.get("chal") and not s["chal_sent"]:
                p, s["re"] = signer.payload(d["_key"], d["id"], cmd, args, chal=r["chal"])
                s["chal_sent"] = True
                c.publish("%s/%s/cmd" % (prefix[d["id"]], d["id"]), p, qos=1).wait_for_publish(10)
                continue
            del state[d["id"]]
            on_result(d["id"], {"ok": r.get("ok") is True, "reply": r, "s": round(time.monotonic() - s["t0"], 2)})
        for dev in state:
            on_result(dev, {"ok": False, "timeout": True, "reply": None,
                            "s": round(time.monotonic() - state[dev]["t0"], 2)})
    finally:
        c.loop_stop()
        c.disconnect()


# ------------------------------------------------------------------ OTA (FORMAT.md "OTA updates")
def load_bundle(path, version=None, chunk=None):
    """A bundle folder (manifest.jsonl) or a make build output (needs version) -> ota_bundle's dict."""
    import ota_bundle as OB

    try:
        if os.path.isfile(os.path.join(path, "manifest.jsonl")):
            b = OB.load(path)
            if version is not None and version != b["header"]["version"]:
                raise UsageError("%s is version %d, not %d" % (path, b["header"]["version"], version))
            return b
        if not os.path.isdir(path):
            raise UsageError("%s: neither a bundle folder nor a build output" % path)
        if version is None:
            raise UsageError("%s is a build output: give --version V to make its bundle" % path)
        return OB.make(path, version, chunk or OB.CHUNK)
    except (OB.BundleError, OSError, ValueError) as e:
        raise UsageError("bundle %s: %s" % (path, e))


class Link:
    """One broker's paho client for the OTA sessions of its devices (one device at a time)."""

    def __init__(self, broker, devs, a, signer):
        self.a = a
        self.signer = signer
        self.inbox = queue.Queue()
        self.pre = {d["id"]: "%s/%s/" % (d.get("prefix") or a.prefix, d["id"]) for d in devs}
        topics = [self.pre[d["id"]] + t for d in devs for t in ("reply", "status")]
        self.c = _client(broker, topics, self.inbox, id(devs))

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()

    def publish(self, d, topic, payload):
        self.c.publish(self.pre[d["id"]] + topic, payload, qos=1).wait_for_publish(10)

    def _get(self, deadline):
        try:
            return self.inbox.get(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            return None, None

    def command(self, d, cmd, args=None):
        """The verified reply of a signed command (a challenge answered once), None on a timeout."""
        args = args or {}
        p, re_ = self.signer.payload(d["_key"], d["id"], cmd, args)
        self.publish(d, "cmd", p)
        chal_sent = False
        deadline = time.monotonic() + self.a.timeout
        while time.monotonic() < deadline:
            topic, payload = self._get(deadline)
            if topic != self.pre[d["id"]] + "reply":
                continue
            try:
                r = cmdsign.verify_reply(d["_key"], d["id"], payload)
            except ValueError:
                continue
            if r.get("re") != re_:
                continue
            if r.get("ok") is False and NO_UTC in str(r.get("error")) and r.get("chal") and not chal_sent:
                p, re_ = self.signer.payload(d["_key"], d["id"], cmd, args, chal=r["chal"])
                chal_sent = True
                self.publish(d, "cmd", p)
                continue
            return r
        return None

    def wait_version(self, d, version, seconds):
        """A status of the device reporting `version` installed and running (its "ota" field)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            topic, payload = self._get(deadline)
            if topic != self.pre[d["id"]] + "status":
                continue
            try:
                o = json.loads(payload).get("ota") or {}
            except ValueError:
                continue
            if o.get("ver") == version:
                return o
        return None


def ota_device(link, d, bundle, progress=None):
    """One device's update; -> outcome dict (ok, reply, error, s)."""
    import ota_bundle as OB

    a = link.a
    t0 = time.monotonic()
    key, dev = d["_key"], d["id"]
    mac = OB.manifest_mac(key, dev, bundle["manifest"])
    version = bundle["header"]["version"]

    def out(ok, reply=None, error=None, **kw):
        o = {"ok": ok, "reply": reply, "s": round(time.monotonic() - t0, 2)}
        if error:
            o["error"] = error
        o.update(kw)
        return o

    def cmd(name, args=None):
        r = link.command(d, name, args)
        if r is None:
            raise _Stop(out(False, timeout=True))
        if not r.get("ok"):
            raise _Stop(out(False, r, "%s" % r.get("error")))
        return r

    try:
        st = cmd("ota_begin", OB.begin_args(bundle, key, dev))["result"]
        best, stale, sent = -1, 0, 0
        while st.get("state") != "ready":
            if progress:
                progress(dev, st.get("bytes", 0), st.get("total", 1))
            if st.get("bytes", 0) > best:
                best, stale = st["bytes"], 0
            else:
                stale += 1
                if stale >= a.ota_rounds:
                    return out(False, {"result": st}, "no progress in %d rounds (%s)" % (stale, st.get("error")))
            for _f, _k, m in OB.chunks(bundle, key, dev, need=st.get("need") or [], mac_hex=mac):
                link.publish(d, "ota", m)
                sent += 1
                if a.gap_ms:
                    time.sleep(a.gap_ms / 1000.0)
            st = cmd("ota_status")["result"]
            if st.get("state") == "idle":  # the manifest was refused: the staged update is gone
                return out(False, {"result": st}, "update dropped by the device: %s" % st.get("error"))
        if progress:
            progress(dev, st["total"], st["total"])
        r = cmd("ota_commit")
        extra = {"sent": sent, "reused": st.get("reused", 0)}
        if a.wait:
            o = link.wait_version(d, version, a.wait)
            if o is None:
                return out(False, r, "installed %d, but no status reporting it within %g s after the reboot"
                           % (version, a.wait), **extra)
            extra["running"] = o
        return out(True, r, **extra)
    except _Stop as e:
        return e.args[0]


class _Stop(Exception):
    pass


def ota_group(broker, devs, bundle, a, signer, on_result, progress):
    link = Link(broker, devs, a, signer)
    try:
        for d in devs:
            on_result(d["id"], ota_device(link, d, bundle, progress))
    finally:
        link.close()


# ------------------------------------------------------------------ output
def _short(v, n=120):
    s = json.dumps(v, sort_keys=True, separators=(",", ":"))
    return s if len(s) <= n else s[: n - 3] + "..."


def describe(cmd, out, timeout):
    """One human line for a device's outcome."""
    if out.get("timeout"):
        return "no reply within %g s (offline, wrong key or id, or a refusal rate-limited: retry)" % timeout
    if out.get("error"):
        return out["error"]
    r = out["reply"]
    if not out["ok"]:
        s = str(r.get("error"))
        if r.get("key"):
            s += " [key %s, expected %s]" % (r["key"], r.get("expected"))
        return s
    res = r.get("result") or {}
    if cmd == "config_set":
        parts = []
        if res.get("now"):
            parts.append("applied now: " + ", ".join("%s=%s" % (k, _short(v, 40)) for k, v in sorted(res["now"].items())))
        if res.get("restart"):
            parts.append("applies at next restart: " + ", ".join(
                "%s=%s" % (k, _short(v, 40)) for k, v in sorted(res["restart"].items())))
        if res.get("unchanged"):
            parts.append("unchanged: " + ", ".join(res["unchanged"]))
        return "; ".join(parts) or "nothing to change"
    if cmd == "config_get":
        s = _short(res.get("value") if "key" in res else res.get("config"))
        if res.get("restart"):
            s += " (saved, applies at next restart: %s)" % _short(res["restart"], 60)
        return s
    if cmd == "ota":
        s = "installed version %s in slot %s (previous %s), %d chunks sent, %d files reused" % (
            res.get("installed"), res.get("slot"), res.get("previous"), out.get("sent", 0), out.get("reused", 0))
        if out.get("running"):
            s += "; rebooted, status reports version %s" % out["running"].get("ver")
        return s
    if cmd in ("dtc_read", "dtc_clear"):
        s = "VIN %s; stored: %s; pending: %s" % (res.get("vin") or "unknown", ", ".join(res.get("stored") or []) or "none",
                                                 ", ".join(res.get("pending") or []) or "none")
        return ("cleared; " + s) if res.get("cleared") else s
    return _short(res)


def print_table(rows, n_ok):
    """The summary table: rich when installed, else plain columns."""
    title = "%d of %d devices ok" % (n_ok, len(rows))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        w = max([len(r[0]) for r in rows] + [6])
        print(title)
        print("%-*s  %-7s  %6s  %s" % (w, "device", "result", "s", "detail"))
        for dev, res, s, detail in rows:
            print("%-*s  %-7s  %6s  %s" % (w, dev, res, s, detail))
        return
    t = Table(title=title)
    for col in ("device", "result", "s", "detail"):
        t.add_column(col, overflow="fold")
    for dev, res, s, detail in rows:
        style = {"ok": "green", "FAILED": "red", "TIMEOUT": "yellow"}.get(res)
        t.add_row(dev, "[%s]%s[/]" % (style, res) if style else res, str(s), detail)
    Console(soft_wrap=False).print(t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--devices", help="device list (CSV or JSON)")
    ap.add_argument("--device", action="append", default=[], help="only this device id (repeatable)")
    ap.add_argument("--broker", default="127.0.0.1", help="HOST[:PORT] (default 127.0.0.1:1883)")
    ap.add_argument("--tls", action="store_true", help="MQTT over TLS (port 8883 unless given)")
    ap.add_argument("--ca", help="CA certificate file for --tls")
    ap.add_argument("--username")
    ap.add_argument("--password-file")
    ap.add_argument("--prefix", default="freematics", help="topic prefix (config topic_prefix)")
    ap.add_argument("--master", help="fleet master key file (device keys derived from it)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the replies")
    ap.add_argument("--json", action="store_true", help="one JSON line per device, no table")
    sub = ap.add_subparsers(dest="op", required=True)
    ps = sub.add_parser("send", help="any command")
    ps.add_argument("cmd")
    ps.add_argument("args", nargs="?", default="{}", help="JSON object of arguments")
    pc = sub.add_parser("config", help="config get [KEY] | config set KEY=VALUE ...")
    pc.add_argument("what", choices=("get", "set"))
    pc.add_argument("items", nargs="*")
    pd = sub.add_parser("dtc", help="dtc read | dtc clear --confirm")
    pd.add_argument("what", choices=("read", "clear"))
    pd.add_argument("--confirm", action="store_true", help="dtc clear: yes, erase the codes")
    po = sub.add_parser("ota", help="OTA update: ota BUNDLE_OR_BUILD --devices FILE")
    po.add_argument("bundle", help="bundle folder, or a make build output with --version")
    po.add_argument("--version", type=int, help="the version of a bundle made from a build output")
    po.add_argument("--chunk", type=int, help="chunk size of a bundle made from a build output (default 1024)")
    po.add_argument("--wait", type=float, default=0, help="seconds to wait for the rebooted device's status")
    po.add_argument("--gap-ms", type=float, default=20, help="pause between chunk messages (default 20)")
    po.add_argument("--rounds", dest="ota_rounds", type=int, default=4,
                    help="ota_status rounds without progress before a device fails (default 4)")
    pb = sub.add_parser("bundle", help="bundle BUILD --version V [--out DIR]")
    pb.add_argument("build", help="a make build output folder")
    pb.add_argument("--version", type=int, required=True)
    pb.add_argument("--out", help="bundle folder (default build/ota-V)")
    pb.add_argument("--chunk", type=int)
    pb.add_argument("--min-schema", type=int)
    pb.add_argument("--rollback", action="store_true", help="allow installing it over a newer version")
    for p in (ps, pc, pd, po):  # --devices also after the operation (fleet.py ota B --devices F)
        p.add_argument("--devices", default=argparse.SUPPRESS, help="device list (CSV or JSON)")
    a = ap.parse_args(argv)
    try:
        if a.op == "bundle":
            return make_bundle(a)
        bundle = None
        if a.op == "ota":
            cmd, args = "ota", None
            bundle = load_bundle(a.bundle, a.version, a.chunk)
        else:
            cmd, args = build_command(a)
        if not a.devices:
            raise UsageError("--devices FILE is required")
        devs = load_devices(a.devices)
        if a.device:
            missing = [x for x in a.device if x not in {d["id"] for d in devs}]
            if missing:
                raise UsageError("--device %s: not in %s" % (missing[0], a.devices))
            devs = [d for d in devs if d["id"] in a.device]
        for d in devs:
            d["_key"] = device_key(d, a.master)
        groups = {}
        for d in devs:
            groups.setdefault(_broker_of(d, a), []).append(d)
        results = {}
        lock = threading.Lock()

        def on_result(dev, out):
            with lock:
                results[dev] = out
                if a.json:
                    line = {"device": dev, "ok": out["ok"], "timeout": bool(out.get("timeout")),
                            "s": out["s"], "reply": out["reply"]}
                    for k in ("error", "sent", "reused", "running"):  # ota: what was sent, why it failed
                        if k in out:
                            line[k] = out[k]
                    print(json.dumps(line, sort_keys=True), flush=True)
                else:
                    tag = "ok" if out["ok"] else ("TIMEOUT" if out.get("timeout") else "FAILED")
                    print("%s %s %s" % (dev, tag, describe(cmd, out, a.timeout)), flush=True)

        signer = Signer()
        if bundle is not None:
            _ota_all(groups, bundle, a, signer, on_result)
        else:
            threads = [threading.Thread(target=_guard, args=(b, g, cmd, args, a, signer, on_result))
                       for b, g in groups.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    except UsageError as e:
        print("fleet: %s" % e, file=sys.stderr)
        return 2
    rows = []
    n_ok = 0
    for d in devs:
        out = results.get(d["id"], {"ok": False, "timeout": True, "reply": None, "s": ""})
        n_ok += out["ok"]
        tag = "ok" if out["ok"] else ("TIMEOUT" if out.get("timeout") else "FAILED")
        rows.append((d["id"], tag, out["s"], describe(cmd, out, a.timeout)))
    if not a.json:
        print_table(rows, n_ok)
    return 0 if n_ok == len(devs) else 1


def _guard(broker, devs, cmd, args, a, signer, on_result, fn=None):
    """run_group (or fn); a broker that cannot be reached fails its devices (the others go on)."""
    try:
        if fn is None:
            run_group(broker, devs, cmd, args, a, signer, on_result)
        else:
            fn()
    except (UsageError, OSError) as e:
        for d in devs:
            on_result(d["id"], {"ok": False, "error": str(e), "reply": None, "s": ""})


def _ota_all(groups, bundle, a, signer, on_result):
    """One thread per broker, its devices one after the other; a rich progress bar per device."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    devs = [d for g in groups.values() for d in g]
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  disable=a.json) as bar:
        tasks = {d["id"]: bar.add_task(d["id"], total=None) for d in devs}
        lock = threading.Lock()

        def progress(dev, done, total):
            with lock:
                bar.update(tasks[dev], completed=done, total=total)

        def result(dev, out):
            on_result(dev, out)

        threads = [threading.Thread(target=_guard, args=(b, g, "ota", None, a, signer, result,
                                                         lambda b=b, g=g: ota_group(b, g, bundle, a, signer, result, progress)))
                   for b, g in groups.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def make_bundle(a):
    import ota_bundle as OB

    try:
        b = OB.make(a.build, a.version, a.chunk or OB.CHUNK, min_schema=a.min_schema, rollback=a.rollback)
        out = a.out or os.path.join(OB.ROOT, "build", "ota-%d" % a.version)
        OB.write(b, out)
    except (OB.BundleError, OSError, ValueError) as e:
        print("fleet: bundle: %s" % e, file=sys.stderr)
        return 2
    h = b["header"]
    print("bundle %s: version %d, %d files, %d bytes + manifest %d bytes, chunk %d" % (
        out, h["version"], h["files"], h["total"], len(b["manifest"]), h["chunk"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
