"""CMQTT, certificate and SSL-context commands of the SIM7600 simulator, and its broker bridges.

Mixed into peers.sim7600.Sim7600 (which owns timing, replies and the lock). Decisions where the manual and the
seed thread are silent (documented so firmware authors know what the simulator enforces):
  - Any CMQTT command except START/STOP and the queries, while the service is not started: plain ERROR.
  - Client commands on a client that is not acquired: +CMQTT<CMD>: <idx>,20.
  - Checks run in this order: client index (10), forced/real busy (14: an async CONNECT/PUB/SUB/UNSUB/DISC result
    or an RX burst still in flight), not acquired (20), not connected (11, for TOPIC, PAYLOAD, PUB, SUBTOPIC,
    SUB, UNSUBTOPIC, UNSUB, DISC), lengths (22), then the '>' prompt; the data is then UTF-8 checked (2: topics
    always, payloads and will messages when checkUTF8=1).
  - Out-of-range numbers and syntax errors (qos 3, pub_timeout 30, addr without tcp://, keepalive 0): plain ERROR.
  - CONNECT on a connected client: +CMQTTCONNECT: <idx>,19 + ERROR. REL on a connected client: 19.
    STOP with a client still acquired: +CMQTTSTOP: 21 + ERROR. START when started: +CMQTTSTART: 23 + ERROR.
  - START when not registered: OK then +CMQTTSTART: 7. CONNECT when the network is down: OK then ...,9.
  - TLS (ACCQ server_type 1; SSL context = CMQTTSSLCFG's, else ctx number = client index):
      33 "not set certificate": a file the authmode needs (cacert for 1/2, clientcert+clientkey for 2/3) is not
         named in CSSLCFG or was never uploaded with CCERTDOWN;
      34 "open SSL session failed": the uploaded bytes cannot be loaded (truncated/corrupt PEM, key not matching
         the certificate, sslversion 0 = SSL 3.0);
      32 "handshake fail": the TLS handshake with the broker fails or the broker closes the link before CONNACK
         (server not trusted by our CA, our client certificate refused, no client certificate sent).
    The bridge never checks the broker's host name (the module does not either, as far as anyone has shown).
  - Broker refusals (CONNACK 1..5) -> 27..31; connection refused/unreachable -> 3; unknown host -> 25.
  - SUBACK with a failure code -> +CMQTTSUB: <idx>,1. PUB not acknowledged within pub_timeout -> 17.
    No CONNACK within optimeout (AT+CMQTTCFG, default 120 s, scaled) -> +CMQTTCONNECT: <idx>,17.
  - CONNLOST cause: 1 when the broker closes the socket; fault injection may pick 1/2/3.
  - A PUB/SUB/UNSUB/DISC result still owed when the session is lost is never sent (the seed thread shows a real
    module sending the op's failure, '+CMQTTUNSUB: 0,6', before its CONNLOST; never sending it is the stricter case:
    the client must end its wait on the URC alone).
"""

import os
import shutil
import socket
import ssl
import tempfile
import threading

from peers import sim7600_tables as tables  # the simulator's own tables, never the firmware's

RX_CHUNK = tables.RX_CHUNK_MAX


class BadArgs(Exception):
    """A syntax or range error in a command's arguments: the module answers plain ERROR."""


def fmt_urc(line):
    return b"\r\n" + (line if isinstance(line, (bytes, bytearray)) else line.encode()) + b"\r\n"


def rx_burst_pieces(idx, topic, payload, chunk=RX_CHUNK):
    """The pieces a SIM7600 sends for one incoming PUBLISH: RXSTART, RXTOPIC + topic chunk(s), RXPAYLOAD +
    payload chunk(s) of at most `chunk` bytes (none for an empty payload), RXEND."""
    out = [fmt_urc("+CMQTTRXSTART: %d,%d,%d" % (idx, len(topic), len(payload)))]
    for i in range(0, len(topic), chunk):
        part = topic[i : i + chunk]
        out.append(fmt_urc("+CMQTTRXTOPIC: %d,%d" % (idx, len(part))) + part)
    for i in range(0, len(payload), chunk):
        part = payload[i : i + chunk]
        out.append(fmt_urc("+CMQTTRXPAYLOAD: %d,%d" % (idx, len(part))) + part)
    out.append(fmt_urc("+CMQTTRXEND: %d" % idx))
    return out


def rx_burst(idx, topic, payload, chunk=RX_CHUNK):
    """The whole burst as one bytes object."""
    return b"".join(rx_burst_pieces(idx, topic, payload, chunk))


def topic_matches(filt, topic):
    f = filt.split("/")
    t = topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(f) == len(t)


def _utf8_ok(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _cert_name_ok(name):
    return isinstance(name, str) and 5 <= len(name) <= 128 and name.lower().endswith((".pem", ".der"))


def build_tls_context(cfg, certs):
    """(ssl.SSLContext, 0) or (None, CMQTT error 33/34) from a CSSLCFG context and the uploaded files."""
    authmode = cfg["authmode"]
    need = []
    if authmode in (1, 2):
        need.append("cacert")
    if authmode in (2, 3):
        need += ["clientcert", "clientkey"]
    for key in need:
        if not cfg[key] or cfg[key] not in certs:
            return None, 33
    tmp = None
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        v = cfg["sslversion"]
        if v == 0:
            return None, 34
        if v in (1, 2, 3):
            tv = {1: ssl.TLSVersion.TLSv1, 2: ssl.TLSVersion.TLSv1_1, 3: ssl.TLSVersion.TLSv1_2}[v]
            ctx.minimum_version = tv
            ctx.maximum_version = tv
        if "cacert" in need:
            data = certs[cfg["cacert"]]
            if cfg["cacert"].lower().endswith(".pem"):
                ctx.load_verify_locations(cadata=data.decode("ascii"))
            else:
                ctx.load_verify_locations(cadata=data)
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if "clientcert" in need:
            tmp = tempfile.mkdtemp(prefix="sim7600tls")
            paths = []
            for key in ("clientcert", "clientkey"):
                data = certs[cfg[key]]
                if cfg[key].lower().endswith(".der"):
                    if key == "clientkey":
                        return None, 34
                    data = ssl.DER_cert_to_PEM_cert(data).encode()
                p = os.path.join(tmp, key + ".pem")
                with open(p, "wb") as f:
                    f.write(data)
                paths.append(p)
            ctx.load_cert_chain(paths[0], paths[1], password=cfg["keypwd"] or None)
        return ctx, 0
    except (ssl.SSLError, ValueError, UnicodeDecodeError, OSError):
        return None, 34
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


# ====================================================================== bridges


class PahoSession:
    """One CMQTT client's connection to a real broker through paho-mqtt 2.2 (VERSION2 callbacks).

    Everything paho reports goes to the simulator through sim.post() (lock-free), never synchronously."""

    CONNACK_TO_CMQTT = {132: 27, 133: 28, 136: 29, 134: 30, 135: 31}

    def __init__(self, sim, client, host, port, tls_ctx, timeout_s=5.0):
        self.sim = sim
        self.timeout_s = timeout_s
        self.c = client
        self.host = host
        self.port = port
        self.tls_ctx = tls_ctx
        self.cl = None
        self.connacked = False
        self.refused = False
        self.closing = False
        self.dropped = False
        self.reported = False
        self._lock = threading.RLock()
        self._pending = {}
        self._early = {}

    def start(self):
        threading.Thread(target=self._run, name="sim7600-paho-%d" % self.c.idx, daemon=True).start()

    def _report_connect(self, code):
        if not self.reported:
            self.reported = True
            self.sim.post(lambda: self.sim._sess_connected(self, code))

    def _run(self):
        import paho.mqtt.client as mqtt

        c = self.c
        cl = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=c.client_id,
            clean_session=bool(c.clean),
            protocol=mqtt.MQTTv31 if c.version == 3 else mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        if c.will_topic is not None:
            cl.will_set(c.will_topic.decode("utf-8"), bytes(c.will_msg or b""), c.will_qos)
        if c.user is not None:
            cl.username_pw_set(c.user, c.password)
        if self.tls_ctx is not None:
            cl.tls_set_context(self.tls_ctx)
            cl.tls_insecure_set(True)
        cl.connect_timeout = self.timeout_s
        cl.on_connect = self._on_connect
        cl.on_disconnect = self._on_disconnect
        cl.on_message = self._on_message
        cl.on_publish = self._on_publish
        cl.on_subscribe = self._on_ack
        cl.on_unsubscribe = self._on_ack
        self.cl = cl
        if self.sim.broker_unreachable:
            self._report_connect(3)
            return
        try:
            cl.connect(self.host, self.port, c.keepalive)
        except ssl.SSLError:
            self._report_connect(32)
            return
        except socket.gaierror:
            self._report_connect(25)
            return
        except (OSError, ValueError):
            self._report_connect(3 if self.tls_ctx is None else 32)
            return
        if self.dropped:
            sock = cl.socket()
            if sock is not None:
                sock.close()
            return
        cl.loop_start()

    def _on_connect(self, cl, ud, flags, rc, props):
        if rc.is_failure:
            self.refused = True
            self._report_connect(self.CONNACK_TO_CMQTT.get(rc.value, 1))
            cl.disconnect()
            return
        self.connacked = True
        self._report_connect(0)

    def _on_disconnect(self, cl, ud, dflags, rc, props):
        cl.loop_stop()  # from the loop thread: only asks it to end
        if self.dropped or self.refused:
            return
        if not self.connacked:
            self._report_connect(32 if self.tls_ctx is not None else 26)
        elif self.closing:
            self._done("disc", 0)
        else:
            self.sim.post(lambda: self.sim._sess_lost(self, 1))

    def _on_message(self, cl, ud, msg):
        topic = msg.topic.encode("utf-8")
        payload = bytes(msg.payload)
        self.sim.post(lambda: self.sim._sess_message(self, topic, payload))

    def _on_publish(self, cl, ud, mid, rc, props):
        self._ack(mid, 0)

    def _on_ack(self, cl, ud, mid, rcs, props):
        code = 1 if any(getattr(r, "is_failure", False) for r in (rcs or [])) else 0
        self._ack(mid, code)

    def _ack(self, mid, code):
        with self._lock:
            cb = self._pending.pop(mid, None)
            if cb is None:
                self._early[mid] = code
        if cb is not None:
            cb(code)

    def _track(self, mid, cb):
        with self._lock:
            if mid in self._early:
                code = self._early.pop(mid)
            else:
                self._pending[mid] = cb
                return
        cb(code)

    def _done(self, what, code):
        self.sim.post(lambda: self.sim._sess_op_done(self, what, code))

    def publish(self, topic, payload, qos, retain):
        with self._lock:
            info = self.cl.publish(topic.decode("utf-8", "replace"), payload, qos, bool(retain))
            self._track(info.mid, lambda code: self._done("pub", code))

    def subscribe(self, topics):
        with self._lock:
            rc, mid = self.cl.subscribe([(t.decode("utf-8", "replace"), q) for t, q in topics])
            if rc:
                self._done("sub", 1)
                return
            self._track(mid, lambda code: self._done("sub", code))

    def unsubscribe(self, topics):
        with self._lock:
            rc, mid = self.cl.unsubscribe([t.decode("utf-8", "replace") for t in topics])
            if rc:
                self._done("unsub", 1)
                return
            self._track(mid, lambda code: self._done("unsub", code))

    def disconnect(self):
        self.closing = True
        if self.cl is None or self.cl.disconnect():
            self._done("disc", 0)

    def drop(self):
        """Abrupt loss (no DISCONNECT packet: the broker publishes the will)."""
        self.dropped = True
        self._close()

    def _close(self):
        cl = self.cl
        if cl is None:
            return
        sock = cl.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        threading.Thread(target=cl.loop_stop, daemon=True).start()


class LocalBroker:
    """An in-memory broker for tests that need no real one: connections always succeed (unless `refuse` is set
    to a CMQTT code), publishes are recorded in `.messages` and delivered to matching subscriptions, retained
    messages kept. `deliver(topic, payload)` injects a message from "the cloud"."""

    def __init__(self):
        self.sessions = []
        self.messages = []  # (topic bytes, payload bytes, qos, retain)
        self.retained = {}
        self.refuse = 0
        self.connects = 0
        self._lock = threading.Lock()

    def deliver(self, topic, payload, qos=0, retain=False):
        topic = topic if isinstance(topic, bytes) else topic.encode()
        payload = payload if isinstance(payload, bytes) else payload.encode()
        with self._lock:
            if retain:
                self.retained[topic] = payload
            targets = [s for s in self.sessions if s.matches(topic)]
        for s in targets:
            s.sim.post(lambda s=s: s.sim._sess_message(s, topic, payload))

    def session(self, sim, client):
        return LocalSession(self, sim, client)


class LocalSession:
    def __init__(self, broker, sim, client):
        self.broker = broker
        self.sim = sim
        self.c = client
        self.subs = []

    def matches(self, topic):
        t = topic.decode("utf-8", "replace")
        return any(topic_matches(f, t) for f in self.subs)

    def _post(self, fn):
        self.sim.post(fn, min_due=None)

    def start(self):
        b = self.broker
        code = 3 if self.sim.broker_unreachable else b.refuse
        if code == 0:
            with b._lock:
                b.sessions.append(self)
                b.connects += 1
        self._post(lambda: self.sim._sess_connected(self, code))

    def publish(self, topic, payload, qos, retain):
        self.broker.messages.append((topic, payload, qos, bool(retain)))
        self._post(lambda: self.sim._sess_op_done(self, "pub", 0))
        self.broker.deliver(topic, payload, qos, retain)

    def subscribe(self, topics):
        self.subs += [t.decode("utf-8", "replace") for t, _ in topics]
        self._post(lambda: self.sim._sess_op_done(self, "sub", 0))
        for t, p in list(self.broker.retained.items()):
            if self.matches(t):
                self._post(lambda t=t, p=p: self.sim._sess_message(self, t, p))

    def unsubscribe(self, topics):
        for t in topics:
            s = t.decode("utf-8", "replace")
            if s in self.subs:
                self.subs.remove(s)
        self._post(lambda: self.sim._sess_op_done(self, "unsub", 0))

    def _leave(self):
        with self.broker._lock:
            if self in self.broker.sessions:
                self.broker.sessions.remove(self)

    def disconnect(self):
        self._leave()
        self._post(lambda: self.sim._sess_op_done(self, "disc", 0))

    def drop(self):
        self._leave()


# ====================================================================== the AT commands


class MqttMixin:
    MQTT_COMMANDS = {
        "+CMQTTSTART": "cmd_cmqttstart",
        "+CMQTTSTOP": "cmd_cmqttstop",
        "+CMQTTACCQ": "cmd_cmqttaccq",
        "+CMQTTREL": "cmd_cmqttrel",
        "+CMQTTSSLCFG": "cmd_cmqttsslcfg",
        "+CMQTTCFG": "cmd_cmqttcfg",
        "+CMQTTWILLTOPIC": "cmd_cmqttwilltopic",
        "+CMQTTWILLMSG": "cmd_cmqttwillmsg",
        "+CMQTTCONNECT": "cmd_cmqttconnect",
        "+CMQTTDISC": "cmd_cmqttdisc",
        "+CMQTTTOPIC": "cmd_cmqtttopic",
        "+CMQTTPAYLOAD": "cmd_cmqttpayload",
        "+CMQTTPUB": "cmd_cmqttpub",
        "+CMQTTSUBTOPIC": "cmd_cmqttsubtopic",
        "+CMQTTSUB": "cmd_cmqttsub",
        "+CMQTTUNSUBTOPIC": "cmd_cmqttunsubtopic",
        "+CMQTTUNSUB": "cmd_cmqttunsub",
        "+CCERTDOWN": "cmd_ccertdown",
        "+CCERTLIST": "cmd_ccertlist",
        "+CCERTDELE": "cmd_ccertdele",
        "+CSSLCFG": "cmd_csslcfg",
    }

    TEST_REPLIES = {
        "+CMQTTACCQ": "+CMQTTACCQ: (0-1),(1-128),(0-1),(3-4)",
        "+CMQTTREL": "+CMQTTREL: (0-1)",
        "+CMQTTSSLCFG": "+CMQTTSSLCFG: (0,1),(0-9)",
        "+CMQTTWILLTOPIC": "+CMQTTWILLTOPIC: (0-1),(1-1024)",
        "+CMQTTWILLMSG": "+CMQTTWILLMSG: (0-1),(1-1024),(0-2)",
        "+CMQTTCONNECT": "+CMQTTCONNECT: (0-1),(9-256),(1-64800),(0-1)",
        "+CMQTTDISC": "+CMQTTDISC: (0-1),(0,60-180)",
        "+CMQTTTOPIC": "+CMQTTTOPIC: (0-1),(1-1024)",
        "+CMQTTPAYLOAD": "+CMQTTPAYLOAD: (0-1),(1-10240)",
        "+CMQTTPUB": "+CMQTTPUB: (0-1),(0-2),(60-180),(0-1),(0-1)",
        "+CMQTTSUBTOPIC": "+CMQTTSUBTOPIC: (0-1),(1-1024),(0-2)",
        "+CMQTTSUB": "+CMQTTSUB: (0-1),(1-1024),(0-2),(0-1)",
        "+CMQTTUNSUBTOPIC": "+CMQTTUNSUBTOPIC: (0-1),(1-1024)",
        "+CMQTTUNSUB": "+CMQTTUNSUB: (0-1),(1-1024),(0-1)",
        "+CCERTDOWN": "+CCERTDOWN: (5-128),(1-10240)",
    }

    # ------------------------------------------------------------------ helpers

    def _test_form(self, now, cmd, delay):
        if cmd.form != "test":
            return False
        line = self.TEST_REPLIES.get(cmd.name)
        if line is None:
            self.ok(now, delay=delay)
        else:
            self.ok(now, [line], delay=delay)
        return True

    def _cmqtt_err(self, now, cmd, idx, code, delay):
        short = cmd.name[6:]
        if idx is None:
            self.error(now, ["+CMQTT%s: %d" % (short, code)], delay=delay)
        else:
            self.error(now, ["+CMQTT%s: %d,%d" % (short, idx, code)], delay=delay)

    def _client_busy(self, c, now):
        return c.busy is not None or now < c.rx_busy_until

    def _client_for(self, now, cmd, delay, need_connected=False):
        """Run the common checks of a client command; the client, or None after answering an error."""
        if not self.mqtt_started:
            self.error(now, delay=delay)
            return None
        a = cmd.args
        if not a or not isinstance(a[0], int):
            raise BadArgs()
        idx = a[0]
        if idx not in (0, 1):
            self._cmqtt_err(now, cmd, idx, 10, delay)
            return None
        c = self.clients[idx]
        if self._force_busy:
            self._force_busy -= 1
            self._cmqtt_err(now, cmd, idx, 14, delay)
            return None
        if self._client_busy(c, now):
            self._cmqtt_err(now, cmd, idx, 14, delay)
            return None
        if not c.acquired:
            self._cmqtt_err(now, cmd, idx, 20, delay)
            return None
        if need_connected and c.state != "connected":
            self._cmqtt_err(now, cmd, idx, 11, delay)
            return None
        return c

    def _bad(self):
        return BadArgs()

    def _int_in(self, v, lo, hi):
        if not isinstance(v, int) or not lo <= v <= hi:
            raise self._bad()
        return v

    def _data_entry(self, now, cmd, delay, c, n, lo, hi, check_utf8, store):
        """Length check (22), '>' prompt, then exactly n bytes, UTF-8 check (2), store(data), OK."""
        if not isinstance(n, int):
            raise self._bad()
        if not lo <= n <= hi:
            self._cmqtt_err(now, cmd, c.idx, 22, delay)
            return

        def on_data(t, data):
            if check_utf8 and not _utf8_ok(data):
                self._cmqtt_err(t, cmd, c.idx, 2, None)
                return
            err = store(t, data)
            if err:
                self._cmqtt_err(t, cmd, c.idx, err, None)
            elif err is None:
                self.ok(t)

        self.prompt(now, n, on_data, delay)

    def _start_op(self, c, name, now, min_key="cmqttop"):
        c.busy = name
        c.op_token += 1
        c.op_min_due = now + self._ms(min_key)
        tok = c.op_token

        return tok

    def _clear_busy(self, c):
        c.busy = None
        c.op_token += 1

    def _op_result(self, c, name, code, due=None):
        self._emit_urc(fmt_urc("+CMQTT%s: %d,%d" % (name, c.idx, code)), due)

    def _drop_sessions(self):
        for c in getattr(self, "clients", ()):
            self._close_session(c)

    def _close_session(self, c):
        s = c.session
        c.session = None
        if s is not None:
            s.drop()

    def _lose_connection(self, idx, urc):
        c = self.clients[idx]
        if c.state == "idle":
            return
        self._close_session(c)
        self._clear_busy(c)
        c.state = "idle"
        self._emit_urc(fmt_urc(urc))

    def _resolve(self, host, port):
        m = self.broker_map
        for key in ("%s:%d" % (host, port), host, "*:%d" % port, "*"):
            if key in m:
                return m[key]
        return host, port

    # ------------------------------------------------------------------ bridge callbacks (run under the lock)

    def _later(self, c, fn):
        """Run fn at the op's minimum due time (results never come faster than the module's)."""
        due = getattr(c, "op_min_due", 0)
        if self._now() >= due:
            fn()
        else:
            self._at(due, fn)

    def _sess_connected(self, sess, code):
        c = sess.c
        if c.session is not sess or c.busy != "CONNECT":
            return

        def fin():
            if c.session is not sess or c.busy != "CONNECT":
                return
            self._clear_busy(c)
            if code == 0:
                c.state = "connected"
            else:
                c.state = "idle"
                c.ssl_ctx = None
                self._close_session(c)
            self._op_result(c, "CONNECT", code)

        self._later(c, fin)

    def _sess_op_done(self, sess, what, code):
        c = sess.c
        name = {"pub": "PUB", "sub": "SUB", "unsub": "UNSUB", "disc": "DISC"}[what]
        if c.session is not sess or c.busy != name:
            return
        tok = c.op_token

        def fin():
            if c.op_token != tok or c.busy != name:
                return
            self._clear_busy(c)
            if what == "pub" and code == 0:
                self.counters["published"] += 1
                self.published.append(c.last_pub)
            if what == "disc":
                c.state = "idle"
                c.ssl_ctx = None
                c.session = None
            self._op_result(c, name, code)

        self._later(c, fin)

    def _sess_lost(self, sess, cause):
        c = sess.c
        if c.session is not sess:
            return
        self._lose_connection(c.idx, "+CMQTTCONNLOST: %d,%d" % (c.idx, cause))

    def _sess_message(self, sess, topic, payload):
        c = sess.c
        if c.session is not sess or c.state != "connected":
            return
        if self._data is not None:
            # a '>' prompt is open: the burst waits until that command has been answered
            self._at(self._now() + 1, lambda: self._sess_message(sess, topic, payload))
            return
        # The burst starts after the replies already queued, leaves at the UART's pace (10 bits a byte at `baud`,
        # scaled); nothing else is sent inside it and the client is busy (14) until its last byte is out (+ rx_gap).
        t = max(self._now(), self._burst_until, self._reply_due)
        if t >= self._burst_until:
            self._burst_from = t
        for piece in rx_burst_pieces(c.idx, topic, payload):
            t += len(piece) * 10000.0 / self.baud * self.time_scale
            self._push(t, "burst", piece)
        self._burst_until = t
        self.counters["rx_messages"] += 1
        c.rx_busy_until = t + self._ms("rx_gap")

    def inject_message(self, topic, payload, idx=0):
        """Deliver an incoming PUBLISH to client idx as if its broker sent it (needs a connected client)."""
        topic = topic if isinstance(topic, bytes) else topic.encode()
        payload = payload if isinstance(payload, bytes) else payload.encode()
        with self._lock:
            c = self.clients[idx]
            if c.session is not None:
                self._sess_message(c.session, topic, payload)

    # ------------------------------------------------------------------ service

    def cmd_cmqttstart(self, now, cmd, delay):
        if cmd.form != "exec":
            raise self._bad()
        if self.mqtt_started:
            self.error(now, ["+CMQTTSTART: 23"], delay=delay)
            return
        code = 0 if self.registered(now) else 7
        self.mqtt_started = code == 0
        order = self.start_result_order
        if order == "random":
            order = self.rng.choice(("before", "after"))
        if order == "before":
            self.ok(now, ["+CMQTTSTART: %d" % code], delay=delay)
        else:
            due = self.ok(now, delay=delay)
            self._emit_urc(fmt_urc("+CMQTTSTART: %d" % code), due + self._ms("cmqttstart"))

    def cmd_cmqttstop(self, now, cmd, delay):
        if cmd.form != "exec":
            raise self._bad()
        if not self.mqtt_started:
            self.error(now, delay=delay)
            return
        if any(c.acquired for c in self.clients):
            self.error(now, ["+CMQTTSTOP: 21"], delay=delay)
            return
        self.mqtt_started = False
        due = self.ok(now, delay=delay)
        self._emit_urc(fmt_urc("+CMQTTSTOP: 0"), due + self._ms("cmqttstart"))

    def cmd_cmqttaccq(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form == "read":
            lines = []
            for c in self.clients:
                if c.acquired:
                    lines.append('+CMQTTACCQ: %d,"%s",%d,%d' % (c.idx, c.client_id, c.server_type, c.version))
                else:
                    lines.append('+CMQTTACCQ: %d,"",0' % c.idx)
            self.ok(now, lines, delay=delay)
            return
        if cmd.form != "write":
            raise self._bad()
        if not self.mqtt_started:
            self.error(now, delay=delay)
            return
        a = cmd.args
        if len(a) < 2 or len(a) > 4 or not isinstance(a[1], str):
            raise self._bad()
        idx = a[0]
        if not isinstance(idx, int):  # "0" or junk: a syntax error, not a client index
            raise self._bad()
        if idx not in (0, 1):
            self._cmqtt_err(now, cmd, idx, 10, delay)
            return
        cid = a[1]
        if not 1 <= len(cid.encode()) <= tables.CLIENT_ID_MAX:
            raise self._bad()
        st = self._int_in(a[2], 0, 1) if len(a) > 2 and a[2] is not None else 0
        ver = self._int_in(a[3], 3, 4) if len(a) > 3 and a[3] is not None else 3
        c = self.clients[idx]
        if c.acquired:
            self._cmqtt_err(now, cmd, idx, 19, delay)
            return
        c.reset()
        c.acquired = True
        c.client_id = cid
        c.server_type = st
        c.version = ver
        self.ok(now, delay=delay)

    def cmd_cmqttrel(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form != "write":
            raise self._bad()
        c = self._client_for(now, cmd, delay)
        if c is None:
            return
        if c.state != "idle":
            self._cmqtt_err(now, cmd, c.idx, 19, delay)
            return
        c.reset()
        self.ok(now, delay=delay)

    def cmd_cmqttsslcfg(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form == "read":
            self.ok(
                now,
                ["+CMQTTSSLCFG: %d,%s" % (c.idx, "" if c.ssl_ctx is None else c.ssl_ctx) for c in self.clients],
                delay=delay,
            )
            return
        if cmd.form != "write" or len(cmd.args) != 2:
            raise self._bad()
        if not self.mqtt_started:
            self.error(now, delay=delay)
            return
        idx = self._int_in(cmd.args[0], 0, 1)
        ctx = self._int_in(cmd.args[1], 0, 9)
        self.clients[idx].ssl_ctx = ctx
        self.ok(now, delay=delay)

    def cmd_cmqttcfg(self, now, cmd, delay):
        if cmd.form == "read":
            self.ok(
                now, ["+CMQTTCFG: %d,%d,%d" % (c.idx, c.check_utf8, c.optimeout) for c in self.clients], delay=delay
            )
            return
        if cmd.form == "test":
            self.ok(now, ['+CMQTTCFG: "checkUTF8",(0-1),(0-1)', '+CMQTTCFG: "optimeout",(0-1),(20-120)'], delay=delay)
            return
        a = cmd.args
        if cmd.form != "write" or len(a) < 2 or not isinstance(a[0], str):
            raise self._bad()
        if not self.mqtt_started:
            self.error(now, delay=delay)
            return
        key = a[0].lower()
        idx = a[1]
        if idx not in (0, 1):
            self.error(now, ["+CMQTTCFG: %s,10" % idx], delay=delay)
            return
        c = self.clients[idx]
        if not c.acquired:
            self.error(now, ["+CMQTTCFG: %d,20" % idx], delay=delay)
            return
        if key == "checkutf8" and len(a) == 3:
            c.check_utf8 = self._int_in(a[2], 0, 1)
        elif key == "optimeout" and len(a) == 3:
            c.optimeout = self._int_in(a[2], 20, 120)
        elif key == "aliauth" and len(a) == 5:
            pass
        else:
            raise self._bad()
        self.ok(now, delay=delay)

    # ------------------------------------------------------------------ will

    def cmd_cmqttwilltopic(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form != "write" or len(cmd.args) != 2:
            raise self._bad()
        c = self._client_for(now, cmd, delay)
        if c is None:
            return

        def store(t, data):
            c.will_topic = data

        self._data_entry(now, cmd, delay, c, cmd.args[1], 1, tables.TOPIC_MAX, True, store)

    def cmd_cmqttwillmsg(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form != "write" or len(cmd.args) != 3:
            raise self._bad()
        qos = self._int_in(cmd.args[2], 0, 2)
        c = self._client_for(now, cmd, delay)
        if c is None:
            return

        def store(t, data):
            c.will_msg = data
            c.will_qos = qos

        self._data_entry(now, cmd, delay, c, cmd.args[1], 1, tables.TOPIC_MAX, c.check_utf8, store)

    # ------------------------------------------------------------------ connect / disconnect

    def cmd_cmqttconnect(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form == "read":
            lines = []
            for c in self.clients:
                if c.state == "connected":
                    s = '+CMQTTCONNECT: %d,"%s",%d,%d' % (c.idx, c.addr, c.keepalive, c.clean)
                    if c.user is not None:
                        s += ',"%s"' % c.user
                        if c.password is not None:
                            s += ',"%s"' % c.password
                    lines.append(s)
                else:
                    lines.append("+CMQTTCONNECT: %d" % c.idx)
            self.ok(now, lines, delay=delay)
            return
        a = cmd.args
        if cmd.form != "write" or not 4 <= len(a) <= 6:
            raise self._bad()
        addr = a[1]
        if not isinstance(addr, str) or not 9 <= len(addr) <= 256 or not addr.startswith("tcp://"):
            raise self._bad()
        keepalive = self._int_in(a[2], 1, 64800)
        clean = self._int_in(a[3], 0, 1)
        user = a[4] if len(a) > 4 else None
        pw = a[5] if len(a) > 5 else None
        if (user is not None and not isinstance(user, str)) or (pw is not None and not isinstance(pw, str)):
            raise self._bad()
        hostport = addr[6:].rstrip("/")
        host, _, port = hostport.rpartition(":")
        if not host:
            host, port = hostport, "1883"
        port = int(port)
        c = self._client_for(now, cmd, delay)
        if c is None:
            return
        if c.state != "idle":
            self._cmqtt_err(now, cmd, c.idx, 19, delay)
            return
        c.addr, c.keepalive, c.clean, c.user, c.password = addr, keepalive, clean, user, pw
        due = self.ok(now, delay=delay)
        c.state = "connecting"
        tok = self._start_op(c, "CONNECT", due, "cmqttconnect")
        limit = due + c.optimeout * 1000.0 * self.time_scale

        def timed_out():
            if c.op_token == tok and c.busy == "CONNECT":
                self._clear_busy(c)
                c.state = "idle"
                c.ssl_ctx = None
                self._close_session(c)
                self._op_result(c, "CONNECT", 17)

        self._at(limit, timed_out)
        code = 0
        tls_ctx = None
        if not self.registered(now):
            code = 9
        elif c.server_type == 1:
            cfg = self.ssl_ctxs[c.idx if c.ssl_ctx is None else c.ssl_ctx]
            tls_ctx, code = build_tls_context(cfg, self.certs)
        if code:
            c.session = _Failed(c)
            self._sess_connected(c.session, code)
            return
        if self.broker is not None:
            sess = self.broker.session(self, c)
        else:
            h, p = self._resolve(host, port)
            sess = PahoSession(self, c, h, p, tls_ctx, max(0.5, c.optimeout * self.time_scale))
        c.session = sess
        sess.start()

    def cmd_cmqttdisc(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form == "read":
            self.ok(
                now,
                ["+CMQTTDISC: %d,%d" % (c.idx, 0 if c.state == "connected" else 1) for c in self.clients],
                delay=delay,
            )
            return
        if cmd.form != "write" or len(cmd.args) != 2:
            raise self._bad()
        t = cmd.args[1]
        if not isinstance(t, int) or not (t == 0 or 60 <= t <= 180):
            raise self._bad()
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return
        due = self.ok(now, delay=delay)
        self._start_op(c, "DISC", due)
        c.state = "disconnecting"
        c.session.disconnect()

    # ------------------------------------------------------------------ publish

    def cmd_cmqtttopic(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form != "write" or len(cmd.args) != 2:
            raise self._bad()
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return

        def store(t, data):
            c.topic = data

        self._data_entry(now, cmd, delay, c, cmd.args[1], 1, tables.TOPIC_MAX, True, store)

    def cmd_cmqttpayload(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form != "write" or len(cmd.args) != 2:
            raise self._bad()
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return

        def store(t, data):
            c.payload = data

        self._data_entry(now, cmd, delay, c, cmd.args[1], 1, tables.PAYLOAD_MAX, c.check_utf8, store)

    def cmd_cmqttpub(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        a = cmd.args
        if cmd.form != "write" or not 3 <= len(a) <= 5:
            raise self._bad()
        qos = self._int_in(a[1], 0, 2)
        timeout = self._int_in(a[2], tables.PUB_TIMEOUT_MIN, tables.PUB_TIMEOUT_MAX)
        retain = self._int_in(a[3], 0, 1) if len(a) > 3 else 0
        if len(a) > 4:
            self._int_in(a[4], 0, 1)
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return
        if not c.topic:
            self._cmqtt_err(now, cmd, c.idx, 18, delay)
            return
        topic, payload = c.topic, c.payload or b""
        c.topic = c.payload = None
        due = self.ok(now, delay=delay)
        tok = self._start_op(c, "PUB", due)
        c.last_pub = (c.idx, topic, payload, qos, retain)
        c.session.publish(topic, payload, qos, retain)

        def timed_out():
            if c.op_token == tok and c.busy == "PUB":
                self._clear_busy(c)
                self._op_result(c, "PUB", 17)

        self._at(due + timeout * 1000.0 * self.time_scale, timed_out)

    # ------------------------------------------------------------------ subscribe

    def _cached_len(self, items):
        return sum(len(t[0] if isinstance(t, tuple) else t) for t in items)

    def cmd_cmqttsubtopic(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form != "write" or len(cmd.args) != 3:
            raise self._bad()
        qos = self._int_in(cmd.args[2], 0, 2)
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return
        n = cmd.args[1]
        if isinstance(n, int) and self._cached_len(c.sub_topics) + n > 5120:
            self._cmqtt_err(now, cmd, c.idx, 22, delay)
            return

        def store(t, data):
            c.sub_topics.append((data, qos))

        self._data_entry(now, cmd, delay, c, n, 1, tables.TOPIC_MAX, True, store)

    def cmd_cmqttsub(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        a = cmd.args
        if cmd.form != "write" or not 1 <= len(a) <= 4:
            raise self._bad()
        if len(a) >= 3:
            qos = self._int_in(a[2], 0, 2)
        if len(a) in (2, 4):
            self._int_in(a[-1], 0, 1)
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return
        if len(a) <= 2:
            if not c.sub_topics:
                self._cmqtt_err(now, cmd, c.idx, 18, delay)
                return
            topics, c.sub_topics = c.sub_topics, []
            due = self.ok(now, delay=delay)
            self._start_op(c, "SUB", due)
            c.session.subscribe(topics)
            return

        def store(t, data):
            due = self.ok(t)
            self._start_op(c, "SUB", due)
            c.session.subscribe([(data, qos)])
            return False  # answered already

        self._data_entry(now, cmd, delay, c, a[1], 1, tables.TOPIC_MAX, True, store)

    def cmd_cmqttunsubtopic(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        if cmd.form != "write" or len(cmd.args) != 2:
            raise self._bad()
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return
        n = cmd.args[1]
        if isinstance(n, int) and self._cached_len(c.unsub_topics) + n > 5120:
            self._cmqtt_err(now, cmd, c.idx, 22, delay)
            return

        def store(t, data):
            c.unsub_topics.append(data)

        self._data_entry(now, cmd, delay, c, n, 1, tables.TOPIC_MAX, True, store)

    def cmd_cmqttunsub(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        a = cmd.args
        if cmd.form != "write" or len(a) not in (2, 3):
            raise self._bad()
        self._int_in(a[-1], 0, 1)
        c = self._client_for(now, cmd, delay, need_connected=True)
        if c is None:
            return
        if len(a) == 2:
            if not c.unsub_topics:
                self._cmqtt_err(now, cmd, c.idx, 18, delay)
                return
            topics, c.unsub_topics = c.unsub_topics, []
            due = self.ok(now, delay=delay)
            self._start_op(c, "UNSUB", due)
            c.session.unsubscribe(topics)
            return

        def store(t, data):
            due = self.ok(t)
            self._start_op(c, "UNSUB", due)
            c.session.unsubscribe([data])
            return False

        self._data_entry(now, cmd, delay, c, a[1], 1, tables.TOPIC_MAX, True, store)

    # ------------------------------------------------------------------ certificates and SSL contexts

    def cmd_ccertdown(self, now, cmd, delay):
        if self._test_form(now, cmd, delay):
            return
        a = cmd.args
        if cmd.form != "write" or len(a) != 2 or not _cert_name_ok(a[0]):
            raise self._bad()
        n = self._int_in(a[1], 1, tables.CERT_MAX)
        name = a[0]

        def on_data(t, data):
            self.certs[name] = data
            self.ok(t)

        self.prompt(now, n, on_data, delay, secret=True)

    def cmd_ccertlist(self, now, cmd, delay):
        if cmd.form != "exec":
            raise self._bad()
        self.ok(now, ['+CCERTLIST: "%s"' % n for n in sorted(self.certs)], delay=delay)

    def cmd_ccertdele(self, now, cmd, delay):
        a = cmd.args
        if cmd.form != "write" or len(a) != 1 or not isinstance(a[0], str):
            raise self._bad()
        if a[0] not in self.certs:
            self.error(now, delay=delay)
            return
        del self.certs[a[0]]
        self.ok(now, delay=delay)

    def _ssl_no(self):
        if self.ssl is not None:  # Sim7600(ssl=...): set by the test, whatever the revision
            return not self.ssl
        return self.firmware in tables.FIRMWARE_NO_SSL

    def cmd_csslcfg(self, now, cmd, delay):
        if self._ssl_no():
            self.error(now, delay=delay)  # this firmware has no working AT+CSSLCFG (seed: LE11B02SIM7500A)
            return
        if cmd.form == "test":
            self.ok(now, ['+CSSLCFG: "sslversion",(0-9),(0-4)', '+CSSLCFG: "authmode",(0-9),(0-3)'], delay=delay)
            return
        a = cmd.args
        if cmd.form != "write" or not a:
            raise self._bad()
        if len(a) == 1:
            ctx = self._int_in(a[0], 0, 9)
            s = self.ssl_ctxs[ctx]
            line = '+CSSLCFG: %d,%d,%d,%d,%d,"%s","%s","%s",%d,"%s",%s' % (
                ctx,
                s["sslversion"],
                s["authmode"],
                s["ignorelocaltime"],
                s["negotiatetime"],
                s["cacert"],
                s["clientcert"],
                s["clientkey"],
                s["enableSNI"],
                s["keypwd"],
                s["ciphersuites"],
            )
            self.ok(now, [line], delay=delay)
            return
        if len(a) != 3 or not isinstance(a[0], str):
            raise self._bad()
        key = {k.lower(): k for k in self.ssl_ctxs[0]}.get(a[0].lower())
        if key is None:
            raise self._bad()
        ctx = self._int_in(a[1], 0, 9)
        v = a[2]
        ranges = {
            "sslversion": (0, 4),
            "authmode": (0, 3),
            "ignorelocaltime": (0, 1),
            "negotiatetime": (10, 300),
            "enableSNI": (0, 1),
        }
        if key in ranges:
            v = self._int_in(v, *ranges[key])
        elif key in ("cacert", "clientcert", "clientkey"):
            if not _cert_name_ok(v):
                raise self._bad()
        elif key == "keypwd":
            if not isinstance(v, str) or len(v) > 128:
                raise self._bad()
        elif key == "ciphersuites":
            if str(v).upper() not in ("0X002F", "0XFFFF"):
                raise self._bad()
            v = str(v)
        self.ssl_ctxs[ctx][key] = v
        self.ok(now, delay=delay)


class _Failed:
    """Placeholder session for a CONNECT that fails before any network traffic (33/34/9)."""

    def __init__(self, c):
        self.c = c

    def drop(self):
        pass
