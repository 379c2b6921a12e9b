#!/usr/bin/env python3
"""`make sim`: the whole telelogger on this machine, against simulated peers.

  broker     mosquitto when installed, else amqtt in-process (--broker to choose)
  modem      the SIM7600 simulator (host_tests/peers/sim7600.py) on a pty, bridged to the broker
  vehicle    elm327-emulator (`elm -s car`) on a pty
  GNSS       a replayed drive (host_tests/peers/gnss_replay.py) on a pty, when present
  firmware   the telelogger under the host MicroPython (scripts/run_host.py)
  subscriber paho-mqtt, counting the records received by sequence number

    python scripts/sim.py [--duration 60] [--cut-network AT:SECONDS ...] [--out sim-out]

--cut-network 20:15 drops the simulated cellular network at t=20 s for 15 s (+CMQTTNONET):
records keep being stored on flash and arrive, in order, after the network returns.
--faults N --seed S injects N modem/network faults at random times counted from the first publish (every
kind at least once when N is at least the number of kinds): the fault soak of scripts/soak.py, but with the firmware under the real
MicroPython interpreter in real time (`make soak` runs a long one).
Ends with a trip report in --out (trip.png, summary.json/txt, records.jsonl, series.json, modem.log, at.log):
  the live line      stored, queued, published (PUBACK), received, counted at one moment, then the car
  the doctor         scripts/atdoctor on the firmware's own AT log: its headline, each finding named with what
                     caused it (the cold start, a network cut, an injected fault) or as the firmware's own (a
                     host mistake nothing injected explains), and "network restored after N s"
  summary.txt        its first line is the verdict (OK, or FAIL: lost / still queued / simulator bug / ...);
                     modem_errors is the doctor's count of failed commands
  trip.png           speed and RPM, the queue filling during a cut and draining after, delivery per record,
                     the GNSS track in metres, all on the run's clock (the drive is replayed --gnss-speedup x)
The modem starts switched OFF, as after a cold plug-in: the firmware must press its power key (run_host.py
--power-key: the host board writes the pin to a file the simulator follows); --modem-on starts it running.
Exit status: 0 when every record reached the broker, 1 if any was lost or is still stuck in the queue (or the
simulator had a bug), 2 on setup errors.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "host_tests"), os.path.join(ROOT, "firmware"), os.path.join(ROOT, "scripts")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from peers.broker import MOSQUITTO, Broker  # noqa: E402 - the one broker launcher of tests and scripts

PREFIX = "freematics"
DEVICE = "SIMCAR01"


def log(msg):
    print("sim: %s" % msg, flush=True)


def venv_bin(name):
    p = os.path.join(os.path.dirname(sys.executable), name)
    return p if os.path.exists(p) else shutil.which(name)


# ------------------------------------------------------------------ peers
def start_elm(workdir, scenario="car", follow=None):
    """The elm327-emulator on a pty; with follow=(speedup, t0) its SPEED/RPM follow the replayed
    drive (host_tests/peers/elm_drive.py, executed by the emulator's own command interpreter)."""
    exe = venv_bin("elm")
    if not exe:
        raise RuntimeError("elm327-emulator not installed (pip install ELM327-emulator)")
    out = os.path.join(workdir, "elm.port")
    proc = subprocess.Popen([exe, "-s", scenario, "-b", out], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if follow is not None:
        lines = "import sys; sys.path.insert(0, %r)\nimport peers.elm_drive as _d; _d.install(emulator, %r, %r)\n" % (
            os.path.join(ROOT, "host_tests"), follow[0], follow[1])
        proc.stdin.write(lines.encode())
        proc.stdin.flush()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        if os.path.exists(out):
            with open(out) as f:
                line = f.readline().strip()
            if line:
                return proc, line
        if proc.poll() is not None:
            raise RuntimeError("elm327-emulator exited with %s" % proc.returncode)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("elm327-emulator gave no pty within 15 s")


def start_gnss(workdir, speedup):
    """The GNSS drive replay on a pty (peers/gnss_replay.py --link). None if the peer is absent."""
    script = os.path.join(ROOT, "host_tests", "peers", "gnss_replay.py")
    if not os.path.exists(script):
        log("GNSS replay peer (host_tests/peers/gnss_replay.py) not present: running without GNSS")
        return None, None
    link = os.path.join(workdir, "gnss")
    proc = subprocess.Popen([sys.executable, script, "--link", link, "--speedup", str(speedup)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        if os.path.exists(link):
            return proc, os.path.realpath(link)
        if proc.poll() is not None:
            log("GNSS replay exited (%s): %s; running without GNSS" % (proc.returncode, proc.stderr.read()[-500:]))
            return None, None
        time.sleep(0.05)
    proc.kill()
    log("GNSS replay gave no pty within 15 s: running without GNSS")
    return None, None


def start_modem(broker_port, out_dir, time_scale, power_key, modem_on=False, urc_between=0.0, seed=None):
    """The simulated SIM7600 on a pty, switched OFF as after a cold plug-in (modem_on: already running and
    registered, as across an MCU reset), following the host board's power-key file."""
    from peers.sim7600 import PowerKeyFollower, Sim7600, SimPty

    sim = Sim7600(ready=modem_on, powered=False, broker_map={"*": ("127.0.0.1", broker_port)}, time_scale=time_scale,
                  log=os.path.join(out_dir, "modem.log"), urc_between=urc_between, seed=seed)
    return sim, SimPty(sim), PowerKeyFollower(sim, power_key)


# ------------------------------------------------------------------ subscriber
class Subscriber:
    def __init__(self, port, records_path):
        import paho.mqtt.client as mqtt

        from telelogger import encode

        self.encode = encode
        self.lock = threading.Lock()
        self.records = []
        self.seen = set()
        self.status = None
        self.errors = 0
        self.connected = threading.Event()
        self.t0 = time.monotonic()  # sim.py sets the run's origin (the firmware's start) before records come
        self._f = open(records_path, "w")
        # a persistent session: what arrives while we reconnect is kept for us by the broker
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sim-subscriber-%d" % os.getpid(),
                        clean_session=False)
        c.reconnect_delay_set(0.1, 1)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        self.client = c

    def _on_connect(self, client, userdata, flags, rc, props=None):
        client.subscribe([("%s/+/data" % PREFIX, 1), ("%s/+/status" % PREFIX, 1)])
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        if msg.topic.endswith("/status"):
            try:
                self.status = json.loads(msg.payload)
            except ValueError:
                pass
            return
        try:
            d = self.encode.decode_batch(msg.payload)
        except Exception as e:
            self.errors += 1
            log("undecodable payload on %s: %s" % (msg.topic, e))
            return
        recs = d.get("recs", [])
        per = len(msg.payload) / max(1, len(recs))
        rx = round(time.monotonic() - self.t0, 3)
        with self.lock:
            for r in recs:
                r["_bytes"] = per
                r["_rx"] = rx  # s since the firmware started: when the subscriber got it
                if r["seq"] in self.seen:
                    r["_dup"] = True
                self.seen.add(r["seq"])
                self.records.append(r)
                self._f.write(json.dumps(r) + "\n")
            self._f.flush()

    def received(self, until=None):
        """Distinct records received (by the run time `until`, s since the firmware started: a progress
        snapshot's own time, so that the live line compares counts taken at the same moment)."""
        with self.lock:
            if until is None:
                return len(self.seen)
            return len({r["seq"] for r in self.records if r["_rx"] <= until})

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()
        self._f.close()


# what make sim did to the device, as (start s, end s, what) windows in run time (s since the firmware
# started); a doctor finding whose evidence lies in one was caused by it, not by the firmware
COLD_START = "the cold start (modem switched off, powered on by the firmware)"
CUT_GRACE_S = 12.0  # after a cut or fault: the firmware's backoff and re-connect still belong to it
FAULT_SPAN_S = {"silence": 3.0, "nonet": 2.0, "broker_down": 5.0}
REBOOT_SPAN_S = 25.0  # a rebooted module is back after its boot and registration: this many s at time scale 1


def fault_windows(first_publish, cuts, cut_mode, faults_applied, end_s, time_scale=1.0):
    """[(start, end, label, kinds)]: the cold start, each network cut, each injected fault, and the end of
    the run (the firmware disconnects when its time is up). kinds: the finding kinds a window explains
    (None: all). A cut or fault makes the firmware's own commands fail too (CONNECT refused with 9: the
    doctor's "host" kind); the cold start and the end explain only what the module and network did, so a
    host mistake in the bring-up or the disconnect stays the firmware's."""
    events = ("network", "module", "info")
    w = []  # the injected ones first: a cut during the cold start explains what it caused
    for at, secs in cuts:
        w.append((at, at + secs + CUT_GRACE_S, "the network cut at %.0f s for %.0f s (%s)" % (at, secs, cut_mode),
                  None))
    for t, kind in faults_applied:
        span = REBOOT_SPAN_S * time_scale if kind == "modem_reboot" else FAULT_SPAN_S.get(kind, 0.0)
        w.append((t, t + span + CUT_GRACE_S, "the injected fault %s at %.1f s" % (kind, t), None))
    w.append((0.0, first_publish if first_publish is not None else end_s, COLD_START, events))
    w.append((end_s, end_s + 3600.0, "the end of the run (the firmware disconnects)", events))
    return w


_AT_MS = re.compile(r"(?:SENT|RECV)@(\d+)")


_SENT = re.compile(r"=== SENT@(\d+) ===\n(.*?)\n", re.S)


def at_log_offset(at_log, modem_log, modem_t0_s):
    """Run time (s, the monotonic clock less the run's origin) of the firmware AT log's 0 ms: its first
    command is the simulator's first (modem.log, on the simulator's clock that started at modem_t0_s);
    None when either log has none. The firmware's log starts at its assembly, before its progress clock."""
    try:
        with open(at_log, "rb") as f:
            a = _SENT.search(f.read(65536).decode("latin-1"))
        with open(modem_log, "rb") as f:
            m = _SENT.search(f.read(65536).decode("latin-1"))
    except OSError:
        return None
    if not a or not m or a.group(2).strip() != m.group(2).strip():
        return None
    return modem_t0_s + (int(m.group(1)) - int(a.group(1))) / 1000.0


def finding_times(f):
    """The AT-log times (ms) of a finding's evidence."""
    return [int(m.group(1)) for e in f.evidence for m in _AT_MS.finditer(str(e))]


def attribute(d, windows, log_offset_s):
    """Split the doctor's findings: [(finding, cause label)] explained by what make sim injected, and
    [finding] it does not explain (on a host mistake: the firmware's own). log_offset_s: run time of the
    AT log's 0 ms."""
    explained, own = [], []
    for f in d.findings:
        ts = [log_offset_s + ms / 1000.0 for ms in finding_times(f)]
        cause = None
        if ts:
            for a, b, label, kinds in windows:
                # an injected cut/fault (kinds None) explains what ends in it (the evidence may start with
                # the exchange before it: the SUB that preceded a +CMQTTNONET); the cold start and the end
                # of the run only what lies wholly inside
                inside = (a - 0.5 <= max(ts) <= b) if kinds is None else all(a - 0.5 <= t <= b for t in ts)
                if (kinds is None or f.kind in kinds) and inside:
                    cause = label
                    break
        if cause:
            explained.append((f, cause))
        else:
            own.append(f)
    return explained, own


def doctor_report(path, windows, log_offset_s):
    """The transcript doctor on the firmware's own AT log. Returns a dict for summary.json (or None
    without a log) and prints: the doctor's headline, which findings the injected cut/faults caused,
    what the firmware caused (host mistakes no injection explains) and when the network came back."""
    if not os.path.exists(path):
        log("AT log: %s not written: doctor not run" % path)
        return None
    try:
        from atdoctor import diagnose

        with open(path, "rb") as f:
            d = diagnose(f.read(), source=path)
    except Exception as e:  # the report is a bonus: never fail the run over the doctor itself
        log("AT log: %s (doctor not run: %s)" % (path, e))
        return None
    explained, own = attribute(d, windows, log_offset_s)
    host_own = [f for f in own if f.kind == "host" and f.severity != "info"]
    other_own = [f for f in own if f not in host_own]
    log("AT log: %s (%d bytes); doctor: %s" % (path, os.path.getsize(path), d.headline()))
    for f, cause in explained:
        log("  caused by %s: %s %s: %s" % (cause, f.kind, f.id, f.title))
    for f in other_own:
        log("  %s %s: %s" % (f.kind, f.id, f.title))
    for f in host_own:
        log("  NOT explained by anything injected - the firmware's own: %s %s (%s): %s"
            % (f.kind, f.id, f.severity, f.title))
    restored = []
    for f in d.findings:
        if f.id == "connection-lost" and f.data.get("restored"):
            restored.append(f.data.get("restored_ms"))
    for ms in restored:
        if ms is not None:
            log("network restored after %.1f s" % (ms / 1000.0))
    lost_for_good = [f for f in d.findings if f.id == "connection-lost" and not f.data.get("restored")]
    if host_own:
        log("doctor: %d host mistake(s) no injected fault explains: the firmware's own (listed above)" % len(host_own))
    if lost_for_good:
        log("doctor: %d connection loss(es) not restored before the log ends" % len(lost_for_good))
    if explained and not host_own and not lost_for_good:
        log("doctor: every finding that is not information came from what the simulation did (the cold start,"
            " the cuts and faults it injected); the firmware recovered")
    k = d.counts()
    s = d.summary()
    return {
        "doctor": d.headline(), "doctor_host_mistakes": k["host"], "doctor_network_events": k["network"],
        "doctor_module_events": k["module"], "doctor_information": k["info"],
        "doctor_injected": ["%s %s (%s)" % (f.kind, f.id, c) for f, c in explained],
        "doctor_firmware_caused": ["%s %s: %s" % (f.severity, f.id, f.title) for f in host_own],
        "modem_errors": s["failed_commands"],  # the commands the doctor saw fail: one count, the doctor's
        "network_restored_s": [round(ms / 1000.0, 1) for ms in restored if ms is not None],
    }


# ------------------------------------------------------------------ firmware
def write_config(workdir, encoding, batch, gnss_source="uart", at_log=""):
    cfg = {
        "device_id": DEVICE,
        "encoding": encoding,
        "topic_prefix": PREFIX,
        "broker": {"host": "broker.sim", "port": 1883, "tls": False, "keepalive": 60},
        "cellular": {"apn": "internet"},
        "gnss": {"source": gnss_source, "interval_ms": 1000},
        "batch": {"max_records": batch, "max_age_ms": 3000},
        "intervals": {"battery_ms": 5000, "signal_ms": 15000, "status_ms": 10000},
        "debug": {"at_log": at_log, "at_log_max": 1048576},  # the firmware's own AT log, for the doctor
    }
    path = os.path.join(workdir, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


class Firmware:
    def __init__(self, args, modem, obd, gps, config, store, out_dir):
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "run_host.py"), "--modem", modem, "--config", config,
               "--store", store, "--duration", str(args.duration), "--drain", str(args.drain), "--status-ms", "1000",
               "--power-key", args.power_key_path]
        if args.heap:
            cmd += ["--heap", args.heap]
        if obd:
            cmd += ["--obd", obd]
        if gps:
            cmd += ["--gps", gps]
        if args.runtime:
            cmd += ["--runtime", args.runtime]
        self.progress = {}
        self.history = []  # [(run s when it arrived, progress dict)]
        self.clock_base = None  # run s of the firmware's clock 0 (its t_ms; the AT log's ms use the same start)
        self.t0 = time.monotonic()
        self.lines = []
        self._last_msg = None
        self.log = open(os.path.join(out_dir, "firmware.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            line = line.strip()
            try:
                m = json.loads(line)
            except ValueError:
                if line:
                    self.lines.append(line)
                    if not (self._last_msg and line.endswith(self._last_msg)):  # its log line said it already
                        print("  firmware: %s" % line, flush=True)
                continue
            if "progress" in m:
                now = time.monotonic() - self.t0
                p = m["progress"]
                if p.get("t_ms") is not None:
                    base = now - p["t_ms"] / 1000.0  # arrives after it was taken: the smallest is the closest
                    self.clock_base = base if self.clock_base is None else min(self.clock_base, base)
                self.progress = p
                self.history.append((now, p))
            elif m.get("log") in ("warn", "error", "info"):
                self._last_msg = "%s" % (m.get("msg"),)
                print("  firmware %s: %s" % (m["log"], readable(m.get("msg"))), flush=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.t.join(2)
        self.log.close()


RECOVERY_LEVELS = ("re-connect MQTT", "re-acquire the MQTT client", "restart the MQTT service",
                   "full modem bring-up")  # net/cellular.py L_CONNECT..L_MODEM


def _num(x):
    """A float as a person writes it: -78.90000000000001 -> -78.9, 2400.0 -> 2400."""
    if isinstance(x, float):
        return ("%.6f" % x).rstrip("0").rstrip(".")
    return str(x)


def _plain(v):
    if isinstance(v, dict):
        return ", ".join("%s %s" % (k, _plain(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "/".join(_plain(x) for x in v)
    return _num(v)


def _modem_up(d):
    """The firmware's 'modem ... up: {...}' dict as a sentence."""
    c = d.get("cpsi") or {}
    parts = []
    if c:
        parts.append("%s %s, operator %s" % (c.get("system", "?"), c.get("band", ""), c.get("operator", "?")))
    if d.get("signal_dbm") is not None:
        parts.append("signal %s dBm" % _num(d["signal_dbm"]))
    q = [("RSSI", "rssi", "dBm"), ("RSRP", "rsrp", "dBm"), ("RSRQ", "rsrq", "dB")]
    q = ["%s %s %s" % (n, _num(round(c[k], 1)), u) for n, k, u in q if isinstance(c.get(k), (int, float))]
    if q:
        parts.append(", ".join(q))
    if d.get("reg"):
        stat = {0: "not registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming"}
        r = d["reg"]
        names = ("CREG", "CGREG", "CEREG")
        parts.append("registration %s" % ", ".join(
            "%s %s" % (n, stat.get(x, x)) for n, x in zip(names, r if isinstance(r, (list, tuple)) else (r,))))
    t = d.get("time")
    if isinstance(t, (list, tuple)) and len(t) == 7:
        q = t[6]
        parts.append("module clock %04d-%02d-%02d %02d:%02d:%02d UTC%s%02d:%02d" % (
            t[0], t[1], t[2], t[3], t[4], t[5], "-" if q < 0 else "+", abs(q) // 4, abs(q) % 4 * 15))
    if d.get("sim"):
        parts.append("SIM %s" % d["sim"])
    rest = {k: v for k, v in d.items() if k not in ("cpsi", "signal_dbm", "reg", "sim", "model", "revision", "time")}
    if rest:
        parts.append(_plain(rest))
    return "; ".join(parts)


def readable(msg):
    """A firmware log message for a person: no raw dicts or long floats, recovery levels named."""
    msg = "%s" % (msg,)
    msg = re.sub(r"\(level (\d)\)", lambda m: "(recovery level %s: %s)" % (
        m.group(1), RECOVERY_LEVELS[int(m.group(1))] if int(m.group(1)) < len(RECOVERY_LEVELS) else "?"), msg)
    i = msg.find("{")
    if i >= 0 and msg.endswith("}"):
        import ast

        try:
            d = ast.literal_eval(msg[i:])
        except (ValueError, SyntaxError):
            d = None
        if isinstance(d, dict):
            msg = msg[:i] + (_modem_up(d) if "cpsi" in d or "signal_dbm" in d else _plain(d))
    return re.sub(r"-?\d+\.\d{7,}", lambda m: _num(round(float(m.group(0)), 3)), msg)


def fmt_progress(t, p, received):
    """The live line, in the order a record travels: stored on the device -> waiting in its queue ->
    published (the broker acknowledged it) -> received by the subscriber, all counted at the moment of
    the firmware's snapshot (received up to one batch above published: its PUBACK is still on the way)."""
    def v(k, f="%s", unit=""):
        x = p.get(k)
        return "-" if x is None else (f % x) + unit

    if not p:
        return "[%5.1fs] firmware starting (no progress yet)" % t
    sent = p.get("sent") or 0
    fly = received - sent
    line = "[%5.1fs] stored %s, queued %s, published %s, received %d%s | reconnects %s%s" % (
        t, v("records"), v("queued"), v("sent"), received, " (%d awaiting PUBACK)" % fly if fly > 0 else "",
        v("reconnects"), "" if p.get("connected") else " (offline)")
    car = "rpm %s, %s" % (v("rpm", "%.0f"), v("speed", "%.0f", " km/h"))
    if p.get("lat") is not None and p.get("lng") is not None:
        car += ", at %.5f, %.5f" % (p["lat"], p["lng"])
    else:
        car += ", no GNSS fix"
    car += ", battery %s" % v("voltage", "%.1f", " V")
    if p.get("signal") is not None:
        car += ", signal %s dBm" % _num(p["signal"])
    return line + " | " + car


# The heap `make sim` gives the firmware: the entry path with OBD, modem GNSS (device default, no AT log) passes
# 98K on the 32-bit interpreter without faults (make bench's row "entry"; 96K: the first connect runs out);
# the recovery from the network cut passes 100K (with one handled memory fault), the fault soak `--faults 6` 104K
# with seed 1 (102K: seeds 2 and 3 pass, seed 1 runs out in a reconnect), and
# test_sim's three runs (cut, every fault kind, real timings) pass at 128K. 144K leaves a margin over those. The
# ESP32's budget is 96K (issue "Fit a stock ESP32": not met yet).
SIM_HEAP = "144K"


def parse_cuts(specs):
    cuts = []
    for s in specs:
        a, _, b = s.partition(":")
        try:
            cuts.append((float(a), float(b)))
        except ValueError:
            raise SystemExit("--cut-network wants AT:SECONDS, e.g. 20:15 (got %r)" % s)
    return sorted(cuts)


# fault kind -> what it does to the simulated modem/broker (real seconds; the simulator scales its own delays)
FAULTS = (
    "connlost", "ping_fail", "nonet", "err11", "err14", "silence", "garbage", "partial_line", "urc_in_reply",
    "modem_reboot", "broker_down",
)


FAULT_RETRIES = 40  # a fault that finds nothing to act on is retried every 0.3 s, this many times


def fault_schedule(n, duration, seed, kinds=FAULTS):
    """n (time, kind) pairs in [3, duration - 3] s, sorted; the kinds cycle in a shuffled order, so every
    kind occurs once n >= len(kinds)."""
    import random

    rng = random.Random(seed)
    order = list(kinds)
    rng.shuffle(order)
    return sorted((round(rng.uniform(3.0, max(3.5, duration - 3.0)), 2), order[i % len(order)]) for i in range(n))


def apply_fault(kind, sim, broker, time_scale):
    """Inject one fault now. Returns (note, down): what was done, or why nothing was (note differs from
    kind), and for broker_down the seconds until the broker must be resumed."""
    scaled = 1000.0 / time_scale  # simulator ms that make one real second
    if kind == "connlost":
        sim.connlost(0, 1)
    elif kind == "ping_fail":
        sim.ping_fail(0)
    elif kind == "nonet":
        sim.nonet(2 * scaled)
    elif kind == "err11":
        if not sim.drop_silently(0):
            return "err11 (client busy or idle: nothing dropped)", 0
    elif kind == "err14":
        sim.force_busy(1)
    elif kind == "silence":
        sim.silence(3 * scaled)
    elif kind == "garbage":
        sim.garbage()
    elif kind == "partial_line":
        sim.partial_line()
    elif kind == "urc_in_reply":
        sim.urc_in_next_reply("+CTZV: +40,0")
    elif kind == "modem_reboot":
        sim.reboot()
    elif kind == "broker_down":
        if not hasattr(broker, "pause"):
            return "broker_down skipped (needs mosquitto)", 0
        broker.pause()
        return "broker_down for 5 s", 5.0
    return kind, 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60, help="seconds of driving (default 60)")
    ap.add_argument("--cut-network", action="append", default=[], metavar="AT:SECONDS",
                    help="drop the cellular network at AT s for SECONDS s (repeatable)")
    ap.add_argument("--cut-mode", choices=("nonet", "broker", "connlost"), default="nonet",
                    help="how the network is cut: nonet (+CMQTTNONET, registration lost), broker (broker "
                         "stopped: mosquitto only), connlost (+CMQTTCONNLOST each second of the cut)")
    ap.add_argument("--faults", type=int, default=0, help="inject this many random modem/network faults")
    ap.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: random)")
    ap.add_argument("--fault-kinds", default=",".join(FAULTS), metavar="K1,K2",
                    help="the fault kinds --faults draws from (default: all: %s)" % ",".join(FAULTS))
    ap.add_argument("--out", default=os.path.join(ROOT, "sim-out"))
    ap.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"), default="auto")
    ap.add_argument("--runtime", choices=("micropython", "cpython"), default=None)
    ap.add_argument("--encoding", choices=("compact", "json"), default="compact")
    ap.add_argument("--batch", type=int, default=10, help="records per MQTT message")
    ap.add_argument("--drain", type=float, default=30, help="seconds allowed to send the queue at the end")
    ap.add_argument("--gnss", choices=("uart", "modem"), default="uart",
                    help="GNSS source: a UART receiver (NMEA replay on a pty) or the SIM7600's own")
    ap.add_argument("--gnss-speedup", type=float, default=6.0, help="simulated drive seconds per real second")
    ap.add_argument("--time-scale", type=float, default=0.2, help="simulator delays x this (1.0 = real module)")
    ap.add_argument("--heap", default=SIM_HEAP,
                    help="MicroPython heap for the firmware (default %s: the whole telelogger does not fit the ESP32's "
                         "96K yet, see README 'What fits'; make bench row 'entry' measures the smallest)" % SIM_HEAP)
    ap.add_argument("--no-at-log", action="store_true",
                    help="the device's default config: no AT log (debug.at_log off), so no doctor; make bench's "
                         "smallest-heap runs use it")
    ap.add_argument("--modem-on", action="store_true",
                    help="start the modem switched on and registered (default: OFF, as after a cold plug-in)")
    ap.add_argument("--urc-between", type=float, default=0.1, metavar="P",
                    help="probability that a queued URC comes between a reply's lines and its OK (default 0.1)")
    args = ap.parse_args(argv)
    cuts = parse_cuts(args.cut_network)
    os.makedirs(args.out, exist_ok=True)
    for n in ("at.log", "at.log.1"):  # this run's AT log only
        if os.path.exists(os.path.join(args.out, n)):
            os.remove(os.path.join(args.out, n))
    work = tempfile.mkdtemp(prefix="fm-sim-")
    kind = args.broker
    if kind == "auto":
        kind = "mosquitto" if MOSQUITTO else "amqtt"
    broker = sim = pty = keys = elm = gnss = fw = sub = None
    t_start = time.monotonic()
    try:
        if kind == "mosquitto" and not MOSQUITTO:
            raise RuntimeError("--broker mosquitto: mosquitto is not installed")
        # persistence: the subscriber's session (and its queued QoS 1 messages) survive a broker restart
        # (--cut-mode broker, broker_down faults)
        broker = Broker(workdir=work, prefer=kind, persistence=True).start()
        log("broker: %s on 127.0.0.1:%d" % (kind, broker.port))
        sub = Subscriber(broker.port, os.path.join(args.out, "records.jsonl"))
        if not sub.connected.wait(10):
            raise RuntimeError("subscriber could not connect to the broker")
        args.power_key_path = os.path.join(work, "power-key")
        seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
        t_modem = time.monotonic()  # the simulator's transcript clock starts at its construction
        sim, pty, keys = start_modem(broker.port, args.out, args.time_scale, args.power_key_path, args.modem_on,
                                     args.urc_between, seed)
        log("modem: SIM7600 simulator on %s (time scale %.2f), %s, power key from %s" % (
            pty.path, args.time_scale, "switched on" if args.modem_on else "switched OFF", args.power_key_path))
        drive_t0 = time.time()  # the GNSS replay starts now too: the car's speed follows the same drive
        elm, obd_path = start_elm(work, follow=(args.gnss_speedup, drive_t0))
        log("vehicle: elm327-emulator 'car' on %s, speed and RPM following the drive" % obd_path)
        if args.gnss == "uart":
            gnss, gps_path = start_gnss(work, args.gnss_speedup)
            if gps_path:
                log("GNSS: drive replay on %s" % gps_path)
        else:
            from peers.gnss_replay import Drive

            gps_path = None
            sim.position_provider = Drive().cgps_provider(speedup=args.gnss_speedup)
            log("GNSS: the modem's own (+CGPSINFO) following the replayed drive")
        config = write_config(work, args.encoding, args.batch, args.gnss,
                              at_log="" if args.no_at_log else os.path.abspath(os.path.join(args.out, "at.log")))
        store = os.path.join(work, "queue")
        fw = Firmware(args, pty.path, obd_path, gps_path, config, store, args.out)
        log("firmware: scripts/run_host.py for %.0f s (+ up to %.0f s to drain the queue), MicroPython heap %s%s" % (
            args.duration, args.drain, args.heap or "96K",
            " (the ESP32's budget is 96K, which the whole telelogger does not fit yet: README 'What fits')"
            if args.heap == SIM_HEAP else ""))
        t0 = fw.t0  # run time: s since the firmware started (the live line, the report, the doctor)
        sub.t0 = t0
        next_print = 0
        printed = 0
        pending_cuts = list(cuts)
        if args.cut_mode == "broker" and kind != "mosquitto" and cuts:
            raise RuntimeError("--cut-mode broker needs mosquitto (the amqtt broker runs in this process)")
        kinds = tuple(k for k in args.fault_kinds.split(",") if k)
        unknown = [k for k in kinds if k not in FAULTS]
        if unknown:
            raise RuntimeError("--fault-kinds: unknown %s (known: %s)" % (",".join(unknown), ",".join(FAULTS)))
        faults = fault_schedule(args.faults, args.duration, seed, kinds) if args.faults else []
        if faults:
            log("faults: %d, seed %d" % (len(faults), seed))
        if faults and kind != "mosquitto":
            log("note: broker_down faults need mosquitto; they are skipped with %s" % kind)
        applied, skipped, retries = [], [], {}
        applied_t = []  # (run s, kind): when each fault was applied
        up_at = None
        resume_at = None
        connlost_until = 0
        next_connlost = 0
        deadline = t0 + args.duration + args.drain + 60
        while fw.proc.poll() is None and time.monotonic() < deadline:
            now = time.monotonic() - t0
            if pending_cuts and now >= pending_cuts[0][0]:
                at, secs = pending_cuts.pop(0)
                if args.cut_mode == "nonet":
                    log("cutting the network for %.0f s (+CMQTTNONET)" % secs)
                    sim.nonet(secs * 1000.0 / args.time_scale)
                elif args.cut_mode == "broker":
                    log("stopping the broker for %.0f s" % secs)
                    broker.pause()
                    resume_at = now + secs
                else:
                    log("dropping the MQTT connection every second for %.0f s (+CMQTTCONNLOST)" % secs)
                    connlost_until = now + secs
            if up_at is None and fw.progress.get("connected") and fw.progress.get("sent"):
                up_at = now  # first publish: the fault clock starts here (a cold modem takes its boot time first)
                log("first publish at %.1f s%s" % (now, "" if args.modem_on else " (the modem was switched on by the firmware)"))
                span = max(1.0, args.duration - now) / args.duration  # still inside the --duration
                faults = [(now + t * span, k) for t, k in faults]
            while faults and up_at is not None and now >= faults[0][0]:
                _, f = faults.pop(0)
                if f == "broker_down" and (kind != "mosquitto" or resume_at is not None):
                    note, down = "broker_down skipped (%s)" % ("broker already down" if resume_at else kind), 0
                else:
                    note, down = apply_fault(f, sim, broker, args.time_scale)
                if down:
                    resume_at = now + down
                if note != f and not down and retries.get(f, 0) < FAULT_RETRIES:
                    # nothing to act on right now (e.g. err11 wants an idle connected client): try again soon
                    retries[f] = retries.get(f, 0) + 1
                    faults.append((now + 0.3, f))
                    faults.sort()
                    continue
                (applied if note == f or down else skipped).append(f)
                if note == f or down:
                    applied_t.append((now, f))
                log("fault at %.1f s: %s" % (now, note))
            if resume_at is not None and now >= resume_at:
                broker.resume()
                log("broker back")
                resume_at = None
            if now < connlost_until and now >= next_connlost:
                sim.connlost(0, 1)
                next_connlost = now + 1.0
            if now >= next_print and len(fw.history) > printed:
                printed = len(fw.history)  # the newest snapshot, the subscriber's count at its time
                at, snap = fw.history[-1]
                print(fmt_progress(at, snap, sub.received(at)), flush=True)
                next_print = now + 2
            elif now >= next_print and not fw.history:
                print(fmt_progress(now, {}, 0), flush=True)
                next_print = now + 2
            time.sleep(0.1)
        if fw.proc.poll() is None:
            log("firmware still running after %.0f s: stopping it" % (time.monotonic() - t0))
        fw.stop()
        p = fw.progress
        last_seq = p.get("last_seq") or 0
        # stragglers: publish() returned, the subscriber may still be receiving
        t1 = time.monotonic()
        while sub.received() < last_seq - (p.get("queued") or 0) and time.monotonic() - t1 < 5:
            time.sleep(0.1)
        print(fmt_progress(time.monotonic() - t0, p, sub.received()), flush=True)
        from trip_report import write_report

        end_s = (fw.history[-1][0] if fw.history else time.monotonic() - t0) - 1.5
        windows = fault_windows(up_at, cuts, args.cut_mode, applied_t, end_s, args.time_scale)
        off = at_log_offset(os.path.join(args.out, "at.log"), os.path.join(args.out, "modem.log"),
                            t_modem - t0)
        if off is None:
            off = fw.clock_base if fw.clock_base is not None else 0.0
        doc = doctor_report(os.path.join(args.out, "at.log"), windows, off)

        with sub.lock:
            recs = list(sub.records)
        extra = {
            "duration_s": args.duration, "cuts": cuts, "cut_mode": args.cut_mode, "broker": kind, "encoding": args.encoding,
            "firmware_exit": fw.proc.returncode, "records_stored": p.get("records"), "reconnects": p.get("reconnects"),
            "send_errors": p.get("send_errors"), "obd_reads": p.get("obd_reads"), "obd_errors": p.get("obd_errors"),
            "gnss_fixes": p.get("gnss_fixes"), "undecodable": sub.errors,
            "modem_commands": sim.counters["commands"], "modem_error_replies": sim.counters["errors"],
            "data_before_prompt": sim.counters["data_before_prompt"],
            "modem_boots": sim.counters["boots"], "power_key_presses": sum(1 for _, p in keys.events if p),
            "urc_between": sim.counters["urc_between"], "simulator_bugs": len(sim.internal_errors),
            "modem_started": "on" if args.modem_on else "off",
            "faults": applied, "faults_skipped": skipped, "fault_seed": seed if args.faults else None,
            "wall_s": round(time.monotonic() - t_start, 1),
            "first_publish_s": None if up_at is None else round(up_at, 1), "gnss_speedup": args.gnss_speedup,
            "fault_times": [[round(t, 1), k] for t, k in applied_t],
        }
        if doc:
            extra.update(doc)
        bad = (doc or {}).get("doctor_firmware_caused") or []
        problems, notes = [], []  # what fails the run besides delivery; what an OK run should still say
        crash = [x for x in fw.lines if re.match(r"^[A-Za-z]*(Error|Exception)\b", x)]
        if crash and not last_seq:
            heap = [m.group(1) for x in fw.lines for m in [re.search(r"heap (\d+[KM]?)\b", x)] if m]
            problems.append("it stopped with %s (MicroPython heap %s; --heap to give it more)" % (
                crash[-1], heap[0] if heap else args.heap or "run_host's default"))
        with open(os.path.join(args.out, "firmware.log"), errors="replace") as f:  # its JSON log lines too
            gave_up = re.findall(r'"resetting: ([^"]*)"', f.read())
        if gave_up:  # a handled fault, but at make sim's heap it means the firmware did not fit or did not cope
            problems.append("the firmware gave up and reset itself: %s" % gave_up[0])
        if sim.internal_errors:
            problems.append("simulator bug: the SIM7600 simulator had %d internal error(s) (tracebacks above)"
                            % len(sim.internal_errors))
        if sim.counters["data_before_prompt"]:
            problems.append("the firmware wrote %d bytes before the modem's '>' prompt" % sim.counters["data_before_prompt"])
        errs = [b for b in bad if b.startswith("error")]
        if errs:
            problems.append("the doctor found %d host mistake(s) of the firmware: %s" % (len(errs), "; ".join(errs)))
        if len(bad) > len(errs):
            notes.append("the doctor found %d host warning(s) no injected fault explains" % (len(bad) - len(errs)))
        if doc and doc["network_restored_s"]:
            notes.append("network restored after %s s" % ", ".join("%.1f" % x for x in doc["network_restored_s"]))
        series = {"progress": [[round(at, 2), q.get("records"), q.get("sent"), q.get("queued"), q.get("connected")]
                               for at, q in fw.history], "cuts": cuts, "faults": applied_t}
        s, png = write_report(recs, args.out, extra, expected_last_seq=last_seq, still_queued=p.get("queued") or 0,
                              title="sim %s" % DEVICE, series=series, problems=problems, notes=notes)
        log("records stored %s, received %d (duplicates %d), missing %d (still queued %d), lost %d; "
            "%.2f bytes/sample" % (last_seq, s["records_received"], s["duplicates"], s["missing"], s["still_queued"],
                                   s["lost"], s["bytes_per_sample"] or 0))
        log("report: %s, %s" % (png, os.path.join(args.out, "summary.txt")))
        log(s["verdict"])
        if not last_seq:
            log("(see %s)" % os.path.join(args.out, "firmware.log"))
            return 2
        return 0 if s["verdict"].startswith("OK") else 1
    except RuntimeError as e:
        log("setup failed: %s" % e)
        return 2
    finally:
        for x in (fw,):
            if x:
                x.stop()
        for proc in (elm, gnss):
            if proc and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    proc.terminate()
        if keys:
            keys.close()
        if pty:
            pty.close()
        if sim:
            sim.close()
        if sub:
            sub.stop()
        if broker:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
