"""A strict SIM7600 simulator (host side, CPython only).

The core `Sim7600` is sans-IO: bytes from the host/firmware go in with `feed(data)`, and the module's output
comes out of `read_ready(now_ms=None)` once its due time has passed. Everything is thread-safe (one RLock),
because the MQTT bridge (peers/sim7600_mqtt.py) reports broker events from paho's threads.

Byte formats follow the real module and the seed thread's transcripts:
  - final result: b"\r\nOK\r\n" / b"\r\nERROR\r\n" / b"\r\n+CME ERROR: <n|text>\r\n" (AT+CMEE 1/2)
  - information lines: b"\r\n" + b"\r\n".join(lines) + b"\r\n" before the final result
  - URC: b"\r\n<line>\r\n"; RX URCs are followed by exactly <n> raw bytes
  - data prompt: b"\r\n>" (no line end), then EXACTLY <n> bytes are read as data. The manual has the host send
    the data after the '>'; bytes that arrive before the prompt has left the module are dropped and counted
    (`counters["data_before_prompt"]`), so a host that writes the data without waiting for '>' fails here
  - echo (ATE1, the default at boot): the command line bytes as received, '\r' included, first in the reply;
    data bytes after a prompt are echoed in front of the final result (as in the seed's RECV blocks).
    A lone '\n' after a command's '\r' is swallowed (not echoed, not an error).

Timing: every delay below is in the module's milliseconds and is multiplied by `time_scale` (0.01 makes a
10 s boot take 100 ms). Replies to commands leave in command order. The PWRKEY thresholds are NOT scaled: they are
the hardware's (a firmware power driver sleeps real milliseconds).

PWRKEY model (SIM7600 hardware design; Freematics drives GPIO27 HIGH for 200 ms through a transistor, i.e. the
module's PWRKEY is pulled LOW while GPIO27 is high): `power_key(1)` = key pressed (GPIO27 high), `power_key(0)` =
released. A press of >= POWER_ON_PRESS_MS (100 ms) powers an OFF module on (boot URCs RDY, +CPIN: READY, SMS DONE,
PB DONE follow after the boot delays, echo on); a press of >= POWER_OFF_PRESS_MS (2500 ms) powers an ON (or booting)
module off, announced with NORMAL POWER DOWN (AT+CPOF powers it off after its OK, silently). Shorter presses are
ignored. Every simulator starts OFF (powered=False) unless a test asks otherwise. `pulse(ms)` is a
press of `ms` milliseconds. Set `power_key_active_high=False` to drive the PWRKEY level directly (0 = pressed).

State kept across reboots (module flash/NV): uploaded certificates, CGDCONT contexts. Everything else (echo,
CMEE, SSL contexts, the MQTT service and clients, GPS) is lost on power-off, AT+CRESET and `reboot()`.

Test/fault API (all thread-safe): urc(line), silence(ms), garbage(data), partial_line(data), urc_in_next_reply(line),
reboot(), power_on()/power_off(), power_key(level)/pulse(ms), connlost(idx, cause), ping_fail(idx, err), drop_silently(idx),
nonet(ms), force_busy(times), broker_unreachable = True, inject_message(topic, payload, idx), set_position(...) /
position_provider, urc_between = P (URCs inside the next reply, at a line boundary before its final result);
PowerKeyFollower(sim, path) presses the key from a host board's power-key file. State to assert on: counters
{commands, by_name, errors, boots, published, rx_messages, bytes_in, bytes_out, data_before_prompt, urc_between},
published [(idx, topic, payload, qos, retain)], certs {name: bytes}, clients[i].state, reg_stat(),
internal_errors [(command, traceback)]: bugs of the simulator itself, raised from feed() and never answered as
a plain ERROR (host syntax/range errors are BadArgs -> ERROR). Protocol facts come from peers/sim7600_tables.py,
never from the firmware. Brokers: broker=None bridges to real brokers via paho (broker_map says where), or
broker=peers.sim7600_mqtt.LocalBroker() keeps everything in memory (LocalBroker.deliver() sends to the device).

Run as a program it serves a pty for a separate process, switched OFF until the power key is pressed:
  python host_tests/peers/sim7600.py --link /tmp/sim7600 --broker 127.0.0.1:1883 [--power-key FILE] [--powered]
      [--firmware REV] [--log FILE]
(--power-key follows the file run_host.py --power-key writes; SIGUSR1 reboots the module, SIGUSR2 cuts its power.)
"""

import argparse
import collections
import datetime
import heapq
import os
import random
import re
import select
import signal
import sys
import termios
import threading
import time
import tty
import weakref

_HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(_HERE) not in sys.path:  # host_tests/, for `peers.*` (never firmware/: see sim7600_tables)
    sys.path.insert(0, os.path.dirname(_HERE))

from peers import sim7600_tables as tables  # noqa: E402  (the simulator's own facts, not modem/codes.py)
from peers.sim7600_mqtt import BadArgs, MqttMixin, fmt_urc  # noqa: E402

POWER_ON_PRESS_MS = tables.POWER_ON_PRESS_MS
POWER_OFF_PRESS_MS = tables.POWER_OFF_PRESS_MS

# Realistic defaults (module milliseconds, before time_scale).
DEFAULT_DELAYS = {
    "cmd": 5,  # any command's reply
    "ATI": 13,
    "+CGDCONT": 20,
    "+CPSI": 11,
    "boot_rdy": 10000,  # power-on -> RDY
    "boot_cpin": 500,  # RDY -> +CPIN: READY (SIM busy until then)
    "boot_sms": 2500,  # +CPIN -> SMS DONE
    "boot_pb": 100,  # SMS DONE -> PB DONE
    "register": 3000,  # SIM ready -> registered
    "netopen": 300,  # +NETOPEN / +NETCLOSE results
    "cmqttstart": 10,  # +CMQTTSTART / +CMQTTSTOP results
    "cmqttconnect": 300,  # minimum OK -> +CMQTTCONNECT: i,0
    "cmqttop": 50,  # minimum for PUB/SUB/UNSUB/DISC results
    "rx_gap": 0,  # extra busy time after the last byte of an RX burst has been sent
    "gps_fix": 2000,  # AT+CGPS=1 -> first fix
    "cpof": 20,  # OK -> power off
    "creset": 50,  # OK -> reboot starts
}

_CPIN_STATES = ("READY", "SIM PIN")


def _b(s):
    return s if isinstance(s, (bytes, bytearray)) else s.encode()


def parse_args(text):
    """AT argument list -> values: quoted -> str, decimal -> int, empty -> None, else the raw str.
    Raises ValueError on an unterminated quote."""
    out = []
    i = 0
    n = len(text)
    if n == 0:
        return out
    while True:
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            j = text.find('"', i + 1)
            if j < 0:
                raise ValueError("unterminated quote")
            out.append(text[i + 1 : j])
            i = j + 1
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] != ",":
                raise ValueError("junk after quoted string")
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            tok = text[i:j].strip()
            if tok == "":
                out.append(None)
            else:
                try:
                    out.append(int(tok))
                except ValueError:
                    out.append(tok)
            i = j
        if i >= n:
            return out
        i += 1  # the comma


class Args(list):
    """A command's argument values. Indexing past the end means the host gave too few arguments: BadArgs
    (the module's plain ERROR), so an IndexError inside a handler is always a simulator bug."""

    def __getitem__(self, i):
        try:
            return list.__getitem__(self, i)
        except IndexError:
            raise BadArgs("missing argument %s" % i) from None

    def int_at(self, i, lo, hi, default=None):
        """Argument i as an int in lo..hi (default when absent/empty and a default is given), else BadArgs."""
        v = self[i] if i < len(self) or default is None else default
        if v is None and default is not None:
            v = default
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise BadArgs("argument %d: %r not in %d..%d" % (i, v, lo, hi))
        return v


class _Reply(bytes):
    """A queued reply; .head = the length of its echo (no URC goes inside the echo)."""

    head = 0


class Cmd:
    """One parsed command line."""

    def __init__(self, raw, name, form, args_text):
        self.raw = raw  # bytes as received, without the terminator
        self.name = name  # '', 'E', 'I', 'Z', '+CSQ', ...
        self.form = form  # 'exec' | 'read' | 'test' | 'write'
        self.args_text = args_text
        self._args = None

    @property
    def args(self):
        if self._args is None:
            try:
                self._args = Args(parse_args(self.args_text))
            except ValueError as e:  # unterminated quote, junk after a string: the host's syntax error
                raise BadArgs(str(e)) from None
        return self._args


def split_command(line):
    """'AT+CSQ' -> Cmd('+CSQ','exec'); 'ATE0' -> Cmd('E','write','0'); None if not an AT line."""
    text = line.decode("latin-1")
    k = text.upper().find("AT")
    if k < 0:
        return None
    body = text[k + 2 :].strip()
    if body == "":
        return Cmd(line, "", "exec", "")
    if body[0] in "+$^":
        i = 1
        while i < len(body) and (body[i].isalnum() or body[i] in "_"):
            i += 1
        name = body[:i].upper()
        rest = body[i:]
        if rest == "":
            return Cmd(line, name, "exec", "")
        if rest == "?":
            return Cmd(line, name, "read", "")
        if rest == "=?":
            return Cmd(line, name, "test", "")
        if rest.startswith("="):
            return Cmd(line, name, "write", rest[1:])
        return Cmd(line, name, "bad", rest)
    if body[0] == "&":
        return Cmd(line, body[:2].upper(), "write", body[2:])
    return Cmd(line, body[0].upper(), "write", body[1:])


class _Client:
    """One CMQTT client slot (0 or 1)."""

    def __init__(self, idx):
        self.idx = idx
        self.reset()

    def reset(self):
        self.acquired = False
        self.client_id = None
        self.server_type = 0
        self.version = 3
        self.check_utf8 = 1
        self.optimeout = 120
        self.ssl_ctx = None
        self.will_topic = None
        self.will_msg = None
        self.will_qos = 0
        self.topic = None
        self.payload = None
        self.sub_topics = []  # [(bytes, qos)]
        self.unsub_topics = []  # [bytes]
        self.state = "idle"  # idle | connecting | connected | disconnecting
        self.busy = None  # name of the async op in flight ('CONNECT', 'PUB', ...)
        self.op_token = 0
        self.rx_busy_until = -1.0
        self.addr = None
        self.keepalive = 60
        self.clean = 0
        self.user = None
        self.password = None
        self.session = None  # bridge session (paho or local)
        self.op_min_due = 0.0
        self.last_pub = None


def _default_ssl_ctx():
    return {
        "sslversion": 4,
        "authmode": 0,
        "ignorelocaltime": 1,
        "negotiatetime": 300,
        "cacert": "",
        "clientcert": "",
        "clientkey": "",
        "enableSNI": 0,
        "keypwd": "",
        "ciphersuites": "0xFFFF",
    }


# Commands whose quoted arguments are credentials (SIMCom AT manual: AT+CPIN="<pin>"; AT+CGAUTH=<cid>,
# <auth_type>,"<passwd>","<user>"; AT+CMQTTCONNECT=<client>,"<server>",<keepalive>,<clean>,"<user>","<pass>").
_CREDENTIALS = (
    (re.compile(rb'(AT\+CPIN=)"[^"\r\n]*"'), rb'\1"***"'),
    (re.compile(rb'(AT\+CGAUTH=[^"\r\n]*)"[^"\r\n]*"(,"[^"\r\n]*")?'), rb'\1"***","***"'),
    (re.compile(rb'(AT\+CMQTTCONNECT=\d+,"[^"\r\n]*",\d+,\d+)(,"[^"\r\n]*"){1,2}'), rb'\1,"***","***"'),
)


def _masked(data):
    for rx, rep in _CREDENTIALS:
        data = rx.sub(rep, data)
    return data


class Sim7600(MqttMixin):
    """The simulated module. See the module docstring for formats, timing and the PWRKEY model.

    Options:
      model, firmware (AT+CGMR), revision (ATI 'Revision:'; defaults to firmware), imei
      ssl: None (AT+CSSLCFG answers ERROR only on the firmware sim7600_tables.FIRMWARE_NO_SSL names, as the
        seed's LE11B02SIM7500A did), False (ERROR whatever the firmware: a revision no table knows that has
        no working SSL), True (SSL works even there)
      powered: False (the default): the module starts switched OFF, as after a cold plug-in of the device: it
        answers nothing until the power key is pressed (power_key()/pulse(), or a PowerKeyFollower on the file
        the host board writes); True: power on at creation (boot URCs follow after boot_rdy); ready: start
        already booted, SIM ready and registered, no boot URCs (a module that kept running across an MCU reset)
      tz_quarters: the network's time zone in AT+CCLK? (quarter hours; +40 = UTC+10 h)
      urc_between: probability that a URC waits up to URC_BETWEEN_WINDOW_MS for the next reply and is sent
        between that reply's information lines (or echo) and its final result (0: never), as a real module's
        URCs may arrive; counters["urc_between"] counts the URCs so placed
      echo: ATE state at boot (True, like the real module); cmee: AT+CMEE at boot (2: text)
      sim_pin: a PIN string the SIM asks for (None: no PIN)
      network: 'home' (stat 1), 'roaming' (5), 'denied' (3), 'none' (searching forever)
      rssi: AT+CSQ value; operator: 'MCC-MNC' (COPS, CPSI); cpsi: the registered AT+CPSI? text (the seed's)
      time_scale: multiplies every delay; delays: overrides of DEFAULT_DELAYS (keys are command names like
        '+CSQ' or the names in DEFAULT_DELAYS)
      start_result_order: 'before' | 'after' | 'random' (+CMQTTSTART: 0 before or after OK), seed for 'random'
      broker: None (bridge to real brokers with paho), or a peers.sim7600_mqtt.LocalBroker (in-memory)
      broker_map: {'host:port' | 'host' | '*:port' | '*': (host, port)} where CONNECT really connects
      baud: UART rate used for how long an RX burst keeps the client busy
      clock: callable returning milliseconds (default: time.monotonic)
      log: a path or a writable text file for the SENT/RECV transcript
      utc: callable returning UTC epoch seconds for the network time (AT+CCLK?)
    """

    # every live instance, so a test fixture can check after each test that no host wrote data before '>'
    instances = weakref.WeakSet()

    def __init__(
        self,
        model="SIMCOM_SIM7600E",
        firmware="LE11B02SIM7600M21-A",
        revision=None,
        ssl=None,
        imei="867584030123456",
        powered=False,
        ready=False,
        echo=True,
        cmee=2,
        sim_pin=None,
        network="home",
        rssi=20,
        operator="505-01",
        cpsi="LTE,Online,505-01,0x309D,136092930,257,EUTRAN-BAND3,1275,4,4,-178,-1185,-789,7",
        time_scale=1.0,
        delays=None,
        start_result_order="before",
        seed=None,
        broker=None,
        broker_map=None,
        baud=115200,
        clock=None,
        log=None,
        utc=None,
        power_key_active_high=True,
        tz_quarters=40,
        urc_between=0.0,
    ):
        self.model = model
        self.firmware = firmware
        self.revision = revision or firmware
        self.ssl = ssl
        self.imei = imei
        self.boot_echo = echo
        self.boot_cmee = cmee
        self.sim_pin = sim_pin
        self.network = network
        self.rssi = rssi
        self.operator = operator
        self.cpsi = cpsi
        self.time_scale = time_scale
        self.delays = dict(DEFAULT_DELAYS)
        if delays:
            self.delays.update(delays)
        self.start_result_order = start_result_order
        self.rng = random.Random(seed)
        self.broker = broker
        self.broker_map = dict(broker_map or {})
        self.baud = baud
        self._clock = clock or (lambda: time.monotonic() * 1000.0)
        self._utc = utc or time.time
        self.power_key_active_high = power_key_active_high
        self.tz_quarters = tz_quarters
        self.urc_between = urc_between
        self._lock = threading.RLock()
        self._t0 = self._clock()
        self._seq = 0
        self._events = []  # heap of (due, seq, epoch, kind, payload)
        self._inbox = collections.deque()  # (epoch, fn, min_due) posted by other threads
        self._out = bytearray()
        self._held = []  # URC bytes held while a data prompt is open
        self._reply_due = 0.0  # replies leave in command order
        self._line = bytearray()
        self._data = None  # (remaining, buffer, callback) while reading prompt data
        self._data_secret = False  # the prompt data is a certificate or key (prompt(secret=True))
        self._prompt_due = 0.0  # when the open data prompt's '>' leaves the module
        self._last_was_cr = False
        self._epoch = 0
        self._silent_until = -1.0
        self._burst_until = -1.0
        self._burst_from = -1.0
        self._urc_in_next_reply = []
        self._force_busy = 0
        self.broker_unreachable = False
        self._key_pressed_at = None
        self._logf = None
        self._log_owned = False
        if log is not None:
            if isinstance(log, str):
                self._logf = open(log, "a", newline="")
                self._log_owned = True
            else:
                self._logf = log
        # the sky, not the module: survives its reboots
        self.position = None  # dict(lat, lon, alt, speed_kn, course) or None: no fix
        self.position_provider = None  # callable() -> dict or None; overrides .position
        # NV state (survives reboots)
        self.certs = {}  # name -> bytes
        self.pdp = {}  # cid -> (type, apn)
        # counters
        Sim7600.instances.add(self)
        self.counters = {
            "commands": 0,
            "by_name": {},
            "errors": 0,
            "boots": 0,
            "published": 0,
            "rx_messages": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "data_before_prompt": 0,
            "urc_between": 0,  # URCs placed between a reply's information lines and its final result
        }
        self.published = []  # (client_idx, topic bytes, payload bytes, qos, retain) acknowledged by the broker
        self.internal_errors = []  # (command bytes, traceback text): bugs of the simulator itself (see check())
        self._reset_state()
        self.power = "off"
        if ready:
            self.power = "on"
            self._epoch += 1
            self.counters["boots"] += 1
            now = self._now()
            self._sim_ready_at = now
            self._cpin = "READY"
            self._reg_at = now
        elif powered:
            self.power_on()

    # ------------------------------------------------------------------ time and scheduling

    def _now(self, now_ms=None):
        return self._clock() if now_ms is None else float(now_ms)

    def _ms(self, key, default=None):
        v = self.delays.get(key)
        if v is None:
            v = self.delays["cmd"] if default is None else default
        return v * self.time_scale

    def _push(self, due, kind, payload, epoch=None):
        self._seq += 1
        heapq.heappush(self._events, (due, self._seq, self._epoch if epoch is None else epoch, kind, payload))

    def _at(self, due, fn):
        """Run fn() at time `due` (dropped if the module reboots or powers off first)."""
        self._push(due, "call", fn)

    def _emit_urc(self, data, due=None):
        """Queue URC bytes (already framed) at `due` (default now)."""
        self._push(self._now() if due is None else due, "urc", bytes(data))

    def urc(self, line, delay_ms=0):
        """Queue a URC line (framed as \\r\\n<line>\\r\\n) after delay_ms (scaled)."""
        with self._lock:
            self._emit_urc(fmt_urc(line), self._now() + delay_ms * self.time_scale)

    def post(self, fn, min_due=None):
        """Thread-safe and lock-free: run fn() under the lock at the next poll (used by the broker bridge's
        threads, which must never wait for the simulator's lock)."""
        self._inbox.append((self._epoch, fn, min_due))

    def _run_due(self, now):
        while self._inbox:
            epoch, fn, min_due = self._inbox.popleft()
            self._push(now if min_due is None else max(now, min_due), "call", fn, epoch)
        while self._events and self._events[0][0] <= now:
            due, _, epoch, kind, payload = self._events[0]
            if now < self._silent_until:
                # silence: postpone everything due inside the window
                heapq.heappop(self._events)
                self._seq += 1
                heapq.heappush(self._events, (self._silent_until, self._seq, epoch, kind, payload))
                continue
            heapq.heappop(self._events)
            if epoch != self._epoch:
                continue
            if kind in ("reply", "urc", "urc_flush") and self._burst_from < due and now < self._burst_until:
                # an RX burst is on the wire: other output waits until it is complete
                self._seq += 1
                heapq.heappush(self._events, (self._burst_until, self._seq, epoch, kind, payload))
                continue
            if kind == "call":
                payload()
            elif kind == "urc":
                if self._data is not None:
                    self._held.append(payload)
                else:
                    self._urc_due(now, payload)
            elif kind == "urc_flush":  # no reply came in time: the waiting URCs up to this one leave now
                while self._urc_wait and any(w[0] == payload for w in self._urc_wait):
                    self._write_out(self._urc_wait.pop(0)[1])
            elif kind == "reply":
                self._reply_out(payload)
            else:  # burst
                self._write_out(payload)

    URC_BETWEEN_WINDOW_MS = 200  # module ms (scaled): how long a URC may wait for a reply to arrive inside

    def _urc_due(self, now, urc):
        """A URC is due. With probability `urc_between` (and always while earlier ones wait, to keep their order)
        it waits up to URC_BETWEEN_WINDOW_MS for the next reply and leaves inside it, between the reply's
        information lines (or echo) and its final result; else, or when no reply comes, it leaves now/then."""
        if not self._urc_wait and (not self.urc_between or self.rng.random() >= self.urc_between):
            self._write_out(urc)
            return
        self._seq += 1
        token = self._seq
        self._urc_wait.append((token, urc))
        self._push(now + self.URC_BETWEEN_WINDOW_MS * self.time_scale, "urc_flush", token)

    def _reply_out(self, reply):
        k = reply.rfind(b"\r\n", 0, len(reply) - 2) if reply.endswith(b"\r\n") else -1
        if self._urc_wait and k > 0:  # any line boundary after the echo, up to the one before the final result
            head = getattr(reply, "head", 0)
            at = [i for i in range(head + 2, k) if reply[i - 2 : i] == b"\r\n"] + [k]
            k = self.rng.choice(at)
            self.counters["urc_between"] += len(self._urc_wait)
            reply = reply[:k] + b"".join(w[1] for w in self._urc_wait) + reply[k:]
            self._urc_wait = []
        elif self._urc_wait:  # a '>' prompt: URCs never enter data entry; they leave before it
            self._write_out(b"".join(w[1] for w in self._urc_wait))
            self._urc_wait = []
        self._write_out(reply)

    def _write_out(self, data):
        if self.power == "off":
            return
        self._out += data
        self.counters["bytes_out"] += len(data)
        self._log("RECV", data)

    # ------------------------------------------------------------------ host-facing I/O

    def feed(self, data, now_ms=None):
        """Bytes from the host (the firmware's UART TX)."""
        with self._lock:
            now = self._now(now_ms)
            self._run_due(now)
            if not data:
                return
            if self._data is not None and self._data_secret:
                self._log("SENT", b"<%d bytes of certificate/key data, not logged>" % len(data))
            else:
                self._log("SENT", _masked(bytes(data)))
            self.counters["bytes_in"] += len(data)
            if self.power != "on" or now < self._silent_until:
                return  # UART not up (off/booting) or fault-injected silence: input lost
            mv = memoryview(bytes(data))
            i = 0
            while i < len(mv):
                if self._data is not None:
                    rem, buf, cb = self._data
                    if now < self._prompt_due:  # '>' not sent yet: not data entry, the bytes are lost
                        self.counters["data_before_prompt"] += len(mv) - i
                        return
                    take = mv[i : i + rem]
                    buf += take
                    i += len(take)
                    rem -= len(take)
                    if rem:
                        self._data = (rem, buf, cb)
                    else:
                        self._data = None
                        self._finish_data(now, bytes(buf), cb)
                    continue
                c = mv[i]
                i += 1
                if c == 13:
                    line = bytes(self._line)
                    self._line = bytearray()
                    self._last_was_cr = True
                    self._line_in(now, line)
                    if self.power != "on":
                        return
                elif c == 10:
                    if self._last_was_cr or not self._line:
                        self._last_was_cr = False
                        continue
                    self._line.append(c)
                else:
                    self._last_was_cr = False
                    if c == 8 and self._line:
                        self._line.pop()
                    else:
                        self._line.append(c)

    def read_ready(self, now_ms=None, max_bytes=None):
        """The module's output whose due time has passed (b'' if none)."""
        with self._lock:
            self._run_due(self._now(now_ms))
            if not self._out:
                return b""
            if max_bytes is None or max_bytes >= len(self._out):
                out = bytes(self._out)
                self._out = bytearray()
            else:
                out = bytes(self._out[:max_bytes])
                del self._out[:max_bytes]
            return out

    def next_due_ms(self):
        """When the next queued output/event is due (None if nothing is queued)."""
        with self._lock:
            if self._out:
                return self._now()
            return self._events[0][0] if self._events else None

    def pending_output(self):
        with self._lock:
            return bool(self._out) or bool(self._events)

    def close(self):
        with self._lock:
            self._drop_sessions()
            if self._logf is not None:
                self._logf.flush()
                if self._log_owned:
                    self._logf.close()
                self._logf = None

    # ------------------------------------------------------------------ transcript
    # The transcript (modem.log in make sim's --out) is an output like any other: the credentials a host
    # sends (SIM PIN, APN and MQTT passwords; certificate and key bodies) are not written to it.

    def _log(self, kind, data):
        if self._logf is None:
            return
        ms = int(self._clock() - self._t0)
        text = bytes(data).decode("latin-1")
        if not text.endswith("\n"):
            text += "\n"
        self._logf.write("=== %s@%d ===\n%s==================\n" % (kind, ms, text))
        self._logf.flush()

    # ------------------------------------------------------------------ replies

    def _reply(self, now, body, delay=None):
        """Queue echo + body as one chunk, after the previous reply."""
        due = max(now + (self._ms("cmd") if delay is None else delay), self._reply_due)
        self._reply_due = due
        data = self._echo_bytes + body
        head = len(self._echo_bytes)
        self._echo_bytes = b""
        if self._urc_in_next_reply:
            urc = self._urc_in_next_reply.pop(0)
            k = data.find(b"\r\n", 2)
            k = len(data) // 2 if k < 0 else k + 2
            data = data[:k] + urc + data[k:]
        data = _Reply(data)
        data.head = head
        self._push(due, "reply", data)
        return due

    def _final(self, now, lines=(), final="OK", delay=None):
        body = b""
        if lines:
            body = b"\r\n" + b"\r\n".join(_b(x) for x in lines) + b"\r\n"
        if final:
            body += b"\r\n" + _b(final) + b"\r\n"
            if final != "OK":
                self.counters["errors"] += 1
        due = self._reply(now, body, delay)
        if self._held:
            for h in self._held:
                self._push(due, "urc", h)
            self._held = []
        return due

    def ok(self, now, lines=(), delay=None):
        return self._final(now, lines, "OK", delay)

    def error(self, now, lines=(), delay=None):
        return self._final(now, lines, "ERROR", delay)

    def cme(self, now, code, delay=None):
        if self.cmee == 0:
            return self.error(now, delay=delay)
        if self.cmee == 1:
            return self._final(now, (), "+CME ERROR: %d" % code, delay)
        return self._final(now, (), "+CME ERROR: %s" % tables.cme_text(code), delay)

    def prompt(self, now, nbytes, on_data, delay=None, secret=False):
        """Send '\\r\\n>' and read exactly nbytes; on_data(now, data) must answer. secret: the data is a
        certificate or key (not written to the transcript)."""
        self._prompt_due = self._reply(now, b"\r\n>", delay)
        self._data = (nbytes, bytearray(), on_data)
        self._data_secret = secret

    def _finish_data(self, now, data, cb):
        if self.echo:
            self._echo_bytes = data
        cb(now, data)
        if self._data is None and self._held:  # handler did not answer: release held URCs anyway
            for h in self._held:
                self._push(self._reply_due, "urc", h)
            self._held = []

    # ------------------------------------------------------------------ command dispatch

    def _line_in(self, now, line):
        cmd = split_command(line)
        if cmd is None:
            return  # not an AT line: the module ignores it
        self.counters["commands"] += 1
        key = cmd.name if cmd.name else "AT"
        self.counters["by_name"][key] = self.counters["by_name"].get(key, 0) + 1
        self._echo_bytes = line + b"\r" if self.echo else b""
        delay = self._ms(cmd.name if cmd.name in self.delays else ("ATI" if cmd.name == "I" else "cmd"))
        handler = self.COMMANDS.get(cmd.name)
        if handler is None or cmd.form == "bad":
            self.error(now, delay=delay)
            return
        try:
            getattr(self, handler)(now, cmd, delay)
        except BadArgs:  # a syntax/range error in the host's command: the module answers plain ERROR
            self.error(now, delay=delay)
        except Exception as e:  # a bug in the simulator: never disguised as the module's ERROR
            self._internal_error(cmd, e)
            raise

    def _internal_error(self, cmd, exc):
        import traceback

        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.internal_errors.append((bytes(cmd.raw), text))
        sys.stderr.write("SIM7600 SIMULATOR BUG on %r:\n%s" % (bytes(cmd.raw), text))

    # name -> handler method; the MQTT/SSL/cert handlers come from MqttMixin.MQTT_COMMANDS
    COMMANDS = {
        "": "cmd_at",
        "E": "cmd_echo",
        "I": "cmd_ati",
        "Z": "cmd_at",
        "&F": "cmd_at",
        "+CMEE": "cmd_cmee",
        "+CGMR": "cmd_cgmr",
        "+CGMI": "cmd_cgmi",
        "+CGMM": "cmd_cgmm",
        "+CGSN": "cmd_cgsn",
        "+SIMCOMATI": "cmd_ati",
        "+CPIN": "cmd_cpin",
        "+CSQ": "cmd_csq",
        "+CREG": "cmd_reg",
        "+CGREG": "cmd_reg",
        "+CEREG": "cmd_reg",
        "+COPS": "cmd_cops",
        "+CPSI": "cmd_cpsi",
        "+CGDCONT": "cmd_cgdcont",
        "+CGACT": "cmd_cgact",
        "+NETOPEN": "cmd_netopen",
        "+NETCLOSE": "cmd_netclose",
        "+IPADDR": "cmd_ipaddr",
        "+CCLK": "cmd_cclk",
        "+CPOF": "cmd_cpof",
        "+CRESET": "cmd_creset",
        "+CGPS": "cmd_cgps",
        "+CGPSINFO": "cmd_cgpsinfo",
        "+CTZU": "cmd_accept",
        "+CTZR": "cmd_accept",
        "+CFUN": "cmd_cfun",
        "+CVAUXV": "cmd_cvauxv",
        "+CVAUXS": "cmd_cvauxs",
    }

    def _reset_state(self):
        self.echo = self.boot_echo
        self.cmee = self.boot_cmee
        self._echo_bytes = b""
        self._line = bytearray()
        self._data = None
        self._held = []
        self._urc_wait = []  # [(token, URC bytes)] waiting to leave inside the next reply (urc_between)
        self._cpin = None  # None until the SIM is read
        self._sim_ready_at = None
        self._reg_at = None  # when registration completes (None: not started)
        self._reg_n = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}
        self._netloss_until = -1.0
        self._pdp_active = set()
        self.netopen = False
        self.ip = "10.224.87.65"
        self.gps_on_at = None
        self._cgps_period = 0  # AT+CGPSINFO=<secs> reporting interval (0: off)
        self.cfun = 1
        self.vaux_mv = 2850
        self.vaux_on = 0
        self.mqtt_started = False
        self.ssl_ctxs = [_default_ssl_ctx() for _ in range(10)]
        self.clients = [_Client(0), _Client(1)]

    # ---- basic commands

    def cmd_at(self, now, cmd, delay):
        self.ok(now, delay=delay)

    def cmd_accept(self, now, cmd, delay):
        self.ok(now, delay=delay)

    def cmd_echo(self, now, cmd, delay):
        if cmd.args_text not in ("", "0", "1"):
            raise BadArgs()
        self.echo = cmd.args_text == "1"
        self.ok(now, delay=delay)

    def cmd_ati(self, now, cmd, delay):
        self.ok(
            now,
            [
                "Manufacturer: SIMCOM INCORPORATED",
                "Model: %s" % self.model,
                "Revision: %s" % self.revision,
                "IMEI: %s" % self.imei,
                "+GCAP: +CGSM",
            ],
            delay=delay,
        )

    def cmd_cgmr(self, now, cmd, delay):
        if cmd.form != "exec":
            raise BadArgs()
        self.ok(now, ["+CGMR: %s" % self.firmware], delay=delay)

    def cmd_cgmi(self, now, cmd, delay):
        self.ok(now, ["SIMCOM INCORPORATED"], delay=delay)

    def cmd_cgmm(self, now, cmd, delay):
        self.ok(now, [self.model], delay=delay)

    def cmd_cgsn(self, now, cmd, delay):
        self.ok(now, [self.imei], delay=delay)

    def cmd_cmee(self, now, cmd, delay):
        if cmd.form == "read":
            self.ok(now, ["+CMEE: %d" % self.cmee], delay=delay)
        elif cmd.form == "test":
            self.ok(now, ["+CMEE: (0-2)"], delay=delay)
        elif cmd.form == "write" and cmd.args and cmd.args[0] in (0, 1, 2):
            self.cmee = cmd.args[0]
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    def cmd_cfun(self, now, cmd, delay):
        if cmd.form == "read":
            self.ok(now, ["+CFUN: %d" % self.cfun], delay=delay)
        elif cmd.form == "write" and cmd.args and cmd.args[0] in (0, 1, 4):
            self.cfun = cmd.args[0]
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    # ---- the auxiliary supply (VDD_AUX: an active GNSS antenna on many boards)

    def cmd_cvauxv(self, now, cmd, delay):
        lo, hi = tables.CVAUXV_MV
        if cmd.form == "read":
            self.ok(now, ["+CVAUXV: %d" % self.vaux_mv], delay=delay)
        elif cmd.form == "write":
            self.vaux_mv = cmd.args.int_at(0, lo, hi)  # millivolts: the SIM5360's '61' is refused
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    def cmd_cvauxs(self, now, cmd, delay):
        if cmd.form == "read":
            self.ok(now, ["+CVAUXS: %d" % self.vaux_on], delay=delay)
        elif cmd.form == "write":
            self.vaux_on = cmd.args.int_at(0, 0, 1)
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    # ---- SIM and registration

    def _sim_busy(self, now):
        return self._sim_ready_at is None or now < self._sim_ready_at

    def _sim_locked(self):
        return self._cpin != "READY"

    def cmd_cpin(self, now, cmd, delay):
        if self._sim_busy(now):
            self.cme(now, 14, delay=delay)
        elif cmd.form == "read":
            self.ok(now, ["+CPIN: %s" % self._cpin], delay=delay)
        elif cmd.form == "write":
            if not self._sim_locked():
                self.cme(now, 3, delay=delay)
            elif cmd.args and str(cmd.args[0]) == str(self.sim_pin):
                self._cpin = "READY"
                self.ok(now, delay=delay)
                self._after_sim_ready(self._reply_due)
            else:
                self.cme(now, 16, delay=delay)
        else:
            raise BadArgs()

    def _after_sim_ready(self, t):
        self._emit_urc(fmt_urc("+CPIN: READY"), t)
        self._emit_urc(fmt_urc("SMS DONE"), t + self._ms("boot_sms"))
        self._emit_urc(fmt_urc("PB DONE"), t + self._ms("boot_sms") + self._ms("boot_pb"))
        if self.network != "none":
            self._reg_at = t + self._ms("register")
            self._at(self._reg_at, self._reg_changed)

    def reg_stat(self, now=None):
        """Current <stat> for CREG/CGREG/CEREG."""
        with self._lock:
            now = self._now(now)
            if self.power != "on" or self._sim_busy(now) or self._sim_locked() or self.cfun != 1:
                return 0
            if self._reg_at is None or now < self._reg_at or now < self._netloss_until:
                return 2
            return {"home": 1, "roaming": 5, "denied": 3}.get(self.network, 2)

    def registered(self, now=None):
        return self.reg_stat(now) in tables.REG_REGISTERED

    def _reg_changed(self):
        stat = self.reg_stat()
        for name, n in self._reg_n.items():
            if n:
                self._emit_urc(fmt_urc("%s: %d" % (name, stat)))

    def cmd_reg(self, now, cmd, delay):
        if cmd.form == "read":
            self.ok(now, ["%s: %d,%d" % (cmd.name, self._reg_n[cmd.name], self.reg_stat(now))], delay=delay)
        elif cmd.form == "test":
            self.ok(now, ["%s: (0-2)" % cmd.name], delay=delay)
        elif cmd.form == "write" and cmd.args and cmd.args[0] in (0, 1, 2):
            self._reg_n[cmd.name] = cmd.args[0]
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    def cmd_csq(self, now, cmd, delay):
        if cmd.form != "exec":
            raise BadArgs()
        rssi = self.rssi if self.registered(now) or self.reg_stat(now) == 2 else 99
        self.ok(now, ["+CSQ: %d,99" % rssi], delay=delay)

    def cmd_cops(self, now, cmd, delay):
        if cmd.form == "read":
            if self.registered(now):
                self.ok(now, ['+COPS: 0,2,"%s",7' % self.operator.replace("-", "")], delay=delay)
            else:
                self.ok(now, ["+COPS: 0"], delay=delay)
        elif cmd.form == "write":
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    def cmd_cpsi(self, now, cmd, delay):
        if cmd.form != "read":
            raise BadArgs()
        if self.registered(now):
            line = "+CPSI: " + self.cpsi.replace("505-01", self.operator)
        else:
            line = "+CPSI: NO SERVICE,Online"
        self.ok(now, [line], delay=delay)

    # ---- packet data

    def cmd_cgdcont(self, now, cmd, delay):
        if cmd.form == "read":
            lines = [
                '+CGDCONT: %d,"%s","%s","0.0.0.0",0,0' % (cid, t, apn) for cid, (t, apn) in sorted(self.pdp.items())
            ]
            self.ok(now, lines, delay=delay)
        elif cmd.form == "test":
            self.ok(now, ['+CGDCONT: (1-24),"IP",,,(0-2),(0-4)'], delay=delay)
        elif cmd.form == "write":
            a = cmd.args
            if not a or not isinstance(a[0], int) or not 1 <= a[0] <= 24:
                raise BadArgs()
            if len(a) == 1:
                self.pdp.pop(a[0], None)
            else:
                if a[1] not in ("IP", "IPV6", "IPV4V6", "PPP"):
                    raise BadArgs()
                self.pdp[a[0]] = (a[1], a[2] if len(a) > 2 and a[2] else "")
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    def cmd_cgact(self, now, cmd, delay):
        if cmd.form == "read":
            lines = ["+CGACT: %d,%d" % (cid, 1 if cid in self._pdp_active else 0) for cid in sorted(self.pdp)]
            self.ok(now, lines, delay=delay)
        elif cmd.form == "write":
            a = cmd.args
            if not a or a[0] not in (0, 1):
                raise BadArgs()
            cids = [a[1]] if len(a) > 1 and a[1] is not None else sorted(self.pdp)
            if a[0] == 1:
                if not self.registered(now):
                    self.cme(now, 30, delay=delay)
                    return
                self._pdp_active.update(cids)
            else:
                self._pdp_active.difference_update(cids)
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    def cmd_netopen(self, now, cmd, delay):
        if cmd.form == "read":
            self.ok(now, ["+NETOPEN: %d" % (1 if self.netopen else 0)], delay=delay)
        elif cmd.form == "exec":
            if self.netopen:
                self.error(now, ["+IP ERROR: Network is already opened"], delay=delay)
                return
            due = self.ok(now, delay=delay)
            ok = self.registered(now)
            if ok:
                self.netopen = True
            self._emit_urc(fmt_urc("+NETOPEN: %d" % (0 if ok else 1)), due + self._ms("netopen"))
        else:
            raise BadArgs()

    def cmd_netclose(self, now, cmd, delay):
        if cmd.form != "exec":
            raise BadArgs()
        if not self.netopen:
            self.error(now, ["+NETCLOSE: 2"], delay=delay)
            return
        self.netopen = False
        due = self.ok(now, delay=delay)
        self._emit_urc(fmt_urc("+NETCLOSE: 0"), due + self._ms("netopen"))

    def cmd_ipaddr(self, now, cmd, delay):
        if cmd.form != "exec":
            raise BadArgs()
        if self.netopen or self.mqtt_started:
            self.ok(now, ["+IPADDR: %s" % self.ip], delay=delay)
        else:
            self.error(now, ["+IP ERROR: Network not opened"], delay=delay)

    # ---- clock

    def cmd_cclk(self, now, cmd, delay):
        # "yy/MM/dd,hh:mm:ss±zz": LOCAL time and its offset from UTC in quarter hours ([M] AT+CCLK), so a
        # host that ignores ±zz is off by the offset (tz_quarters=40 by default: +10 h, the operator 505-01's)
        if cmd.form == "read":
            tz = self.tz_quarters
            if self.registered(now) or self._clock_set is not None:
                if self._clock_set is not None:
                    base, at, tz = self._clock_set
                    t = base + (now - at) / 1000.0
                else:
                    t = self._utc()
                dt = datetime.datetime.fromtimestamp(t + tz * 900, datetime.timezone.utc)
            else:  # no network time yet: the module counts from its epoch, zone +00
                tz = 0
                up = (now - self._boot_at) / 1000.0
                dt = datetime.datetime(1980, 1, 6, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=up)
            self.ok(now, ['+CCLK: "%s%+03d"' % (dt.strftime("%y/%m/%d,%H:%M:%S"), tz)], delay=delay)
        elif cmd.form == "write":
            s = cmd.args[0]
            if not isinstance(s, str) or len(s) != 20 or s[17] not in "+-" or not s[18:].isdigit():
                raise BadArgs("time %r is not yy/MM/dd,hh:mm:ss±zz" % (s,))
            try:
                dt = datetime.datetime.strptime(s[:17], "%y/%m/%d,%H:%M:%S")
            except ValueError:
                raise BadArgs("time %r" % s) from None
            q = int(s[17:])
            ts = dt.replace(tzinfo=datetime.timezone.utc).timestamp() - q * 15 * 60
            self._clock_set = (ts, now, q)
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    _clock_set = None
    _boot_at = 0.0

    # ---- power

    def cmd_cpof(self, now, cmd, delay):
        if cmd.form != "exec":
            raise BadArgs()
        due = self.ok(now, delay=delay)
        self._at(due + self._ms("cpof"), self.power_off)

    def cmd_creset(self, now, cmd, delay):
        if cmd.form != "exec":
            raise BadArgs()
        due = self.ok(now, delay=delay)
        self._at(due + self._ms("creset"), lambda: self.reboot(due + self._ms("creset")))

    def power_on(self, now_ms=None):
        """Start booting now (no-op if already on/booting)."""
        with self._lock:
            if self.power != "off":
                return
            self._start_boot(self._now(now_ms))

    def _start_boot(self, now):
        self._epoch += 1
        self._drop_sessions()
        self._reset_state()
        self._clock_set = None
        self._line = bytearray()
        self._events = [e for e in self._events if e[2] == self._epoch]
        heapq.heapify(self._events)
        self._reply_due = now
        self.power = "booting"
        self._boot_at = now
        self.counters["boots"] += 1
        rdy = now + self._ms("boot_rdy")

        def up():
            self.power = "on"
            self._write_out(fmt_urc("RDY"))

        self._at(rdy, up)
        sim_at = rdy + self._ms("boot_cpin")
        self._sim_ready_at = sim_at
        self._cpin = "SIM PIN" if self.sim_pin else "READY"
        if self.sim_pin:
            self._emit_urc(fmt_urc("+CPIN: SIM PIN"), sim_at)
        else:
            self._after_sim_ready(sim_at)

    def power_off(self, now_ms=None):
        with self._lock:
            self._epoch += 1
            self._drop_sessions()
            self.power = "off"
            self._data = None
            self._held = []
            self._urc_wait = []
            self._events = []
            # bytes already due (e.g. the OK of AT+CPOF) left on the UART before the power went: the host
            # still reads them; only what was not yet due is lost

    def reboot(self, now_ms=None):
        """Fault/CRESET: reboot now. All volatile state is lost; boot URCs (RDY...) follow after boot delays."""
        with self._lock:
            self._run_due(self._now(now_ms))  # output already due is on the wire (the host reads it)
            self.power = "off"
            self._start_boot(self._now(now_ms))

    def power_key(self, level, now_ms=None):
        """Drive the power-key input. level 1 = pressed when power_key_active_high (GPIO27 high on the ONE+)."""
        with self._lock:
            now = self._now(now_ms)
            self._run_due(now)
            pressed = bool(level) == bool(self.power_key_active_high)
            if pressed:
                if self._key_pressed_at is None:
                    self._key_pressed_at = now
                return
            if self._key_pressed_at is None:
                return
            held = now - self._key_pressed_at
            self._key_pressed_at = None
            was_on = self.power != "off"
            if held >= POWER_OFF_PRESS_MS:
                if self.power != "off":
                    self._write_out(fmt_urc(tables.POWER_DOWN_URC))
                    self.power_off()
            elif held >= POWER_ON_PRESS_MS and self.power == "off":
                self._start_boot(now)
            if held >= POWER_OFF_PRESS_MS and self.power == "off" and not was_on:
                self._start_boot(now)  # an OFF module boots on any press of >= 100 ms, however long

    def pulse(self, ms, now_ms=None):
        """A press of `ms` milliseconds starting now (the power-on/off sequence in one call)."""
        with self._lock:
            now = self._now(now_ms)
            self.power_key(1 if self.power_key_active_high else 0, now)
            self.power_key(0 if self.power_key_active_high else 1, now + ms)

    # ---- GPS

    def cmd_cgps(self, now, cmd, delay):
        if cmd.form == "read":
            self.ok(now, ["+CGPS: %d,1" % (1 if self.gps_on_at is not None else 0)], delay=delay)
        elif cmd.form == "write":
            a = cmd.args
            if not a or a[0] not in (0, 1):
                raise BadArgs()
            on = a[0] == 1
            if on == (self.gps_on_at is not None):
                self.error(now, delay=delay)
                return
            self.gps_on_at = now if on else None
            self.ok(now, delay=delay)
        else:
            raise BadArgs()

    def set_position(self, lat, lon, alt=0.0, speed_kn=0.0, course=0.0):
        """Set the fix reported by AT+CGPSINFO (None lat -> no fix)."""
        with self._lock:
            self.position = None if lat is None else dict(lat=lat, lon=lon, alt=alt, speed_kn=speed_kn, course=course)

    def _fix(self, now):
        if self.gps_on_at is None or now < self.gps_on_at + self._ms("gps_fix"):
            return None
        return self.position_provider() if self.position_provider else self.position

    def _schedule_cgpsinfo(self, due, gen):
        def tick():
            if gen != self._cgps_gen or not self._cgps_period:
                return
            if self.gps_on_at is not None:
                fix = self._fix(due)
                line = format_cgpsinfo(fix, self._utc()) if fix is not None else "+CGPSINFO: ,,,,,,,,"
                self._emit_urc(fmt_urc(line), due)
            self._schedule_cgpsinfo(due + self._cgps_period * 1000 * self.time_scale, gen)

        self._at(due, tick)

    def cmd_cgpsinfo(self, now, cmd, delay):
        if cmd.form not in ("exec", "write"):
            raise BadArgs()
        if cmd.form == "write":
            # AT+CGPSINFO=<secs>: the module then reports every <secs> s unasked (0 stops), with the
            # same line format as the query; nothing while GPS is off.
            a = cmd.args
            if not a or not isinstance(a[0], int) or not 0 <= a[0] <= 255:
                raise BadArgs()
            self._cgps_period = a[0]
            self._cgps_gen = getattr(self, "_cgps_gen", 0) + 1
            if a[0]:
                self._schedule_cgpsinfo(now + a[0] * 1000 * self.time_scale, self._cgps_gen)
            self.ok(now, delay=delay)
            return
        if self.gps_on_at is None:
            self.error(now, delay=delay)
            return
        fix = self._fix(now)
        if fix is None:
            self.ok(now, ["+CGPSINFO: ,,,,,,,,"], delay=delay)
            return
        self.ok(now, [format_cgpsinfo(fix, self._utc())], delay=delay)

    # ------------------------------------------------------------------ fault injection

    def silence(self, ms, now_ms=None):
        """The module says nothing and hears nothing for `ms` (scaled); queued output is postponed."""
        with self._lock:
            self._silent_until = self._now(now_ms) + ms * self.time_scale

    def garbage(self, data=None):
        """Emit junk bytes now (line noise)."""
        with self._lock:
            if data is None:
                data = bytes(self.rng.randrange(1, 256) for _ in range(8))
            self._write_out(data)

    def partial_line(self, data=b"+CMQTTR"):
        """Emit the start of a line with no line end (a line cut by a reset/noise)."""
        with self._lock:
            self._write_out(data)

    def urc_in_next_reply(self, line):
        """The next command reply gets this URC inserted after its first line (a strict-parser test)."""
        with self._lock:
            self._urc_in_next_reply.append(fmt_urc(line))

    def force_busy(self, times=1):
        """The next `times` CMQTT commands answer +CMQTT<CMD>: <idx>,14 + ERROR."""
        with self._lock:
            self._force_busy += times

    def connlost(self, idx=0, cause=1):
        """Drop client idx's broker connection: +CMQTTCONNLOST: idx,cause."""
        with self._lock:
            self._lose_connection(idx, "+CMQTTCONNLOST: %d,%d" % (idx, cause))

    def drop_silently(self, idx=0):
        """The broker connection is gone and no URC says so: the next command on the client answers error 11
        (no connection). Returns False (nothing done) while an operation is in flight or the client is idle."""
        with self._lock:
            c = self.clients[idx]
            if c.state != "connected" or c.busy:
                return False
            self._close_session(c)
            c.state = "idle"
            return True

    def ping_fail(self, idx=0, err=17):
        with self._lock:
            self._lose_connection(idx, "+CMQTTPING: %d,%d" % (idx, err))

    def nonet(self, ms=1000):
        """The network drops for `ms` (scaled): +CMQTTNONET, clients disconnected, registration searching."""
        with self._lock:
            now = self._now()
            for c in self.clients:
                if c.state != "idle":
                    self._close_session(c)
                    self._clear_busy(c)
                    c.state = "idle"
            self.netopen = False
            self._netloss_until = now + ms * self.time_scale
            self._reg_changed()
            self._at(self._netloss_until, self._reg_changed)
            self._emit_urc(fmt_urc("+CMQTTNONET"), now)


def format_cgpsinfo(fix, utc):
    lat, lon = fix["lat"], fix["lon"]
    t = fix.get("utc", utc)
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)

    def dm(v, width):
        v = abs(v)
        d = int(v)
        m = (v - d) * 60.0
        return "%0*d%09.6f" % (width, d, m)

    return "+CGPSINFO: %s,%s,%s,%s,%s,%s.%d,%.1f,%.1f,%.1f" % (
        dm(lat, 2),
        "N" if lat >= 0 else "S",
        dm(lon, 3),
        "E" if lon >= 0 else "W",
        dt.strftime("%d%m%y"),
        dt.strftime("%H%M%S"),
        dt.microsecond // 100000,
        fix.get("alt", 0.0),
        fix.get("speed_kn", 0.0),
        fix.get("course", 0.0),
    )


Sim7600.COMMANDS = dict(Sim7600.COMMANDS, **MqttMixin.MQTT_COMMANDS)


# ====================================================================== transports


class SimStream:
    """In-process stream adapter (core/stream.py interface) for firmware running under CPython asyncio."""

    def __init__(self, sim):
        self.sim = sim
        self.closed = False

    def readinto(self, buf):
        if self.closed:
            return 0
        data = self.sim.read_ready(max_bytes=len(buf))
        n = len(data)
        if n:
            buf[:n] = data
        return n

    def write(self, data):
        if not self.closed:
            self.sim.feed(bytes(data))
        return len(data)

    def close(self):
        self.closed = True


class SimPty:
    """Serve the simulator on a pty: `.path` is the slave for the firmware (SerialPath), `.close()` stops."""

    def __init__(self, sim, poll_ms=2):
        self.sim = sim
        self.poll_ms = poll_ms
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        tty.setraw(self._master, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._pending = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="sim7600-pty", daemon=True)
        self._thread.start()

    def _pump(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._master], [], [], self.poll_ms / 1000.0)
            except (OSError, ValueError):
                return
            if r:
                try:
                    data = os.read(self._master, 4096)
                except BlockingIOError:
                    data = b""
                except OSError:
                    data = b""
                if data:
                    self.sim.feed(data)
            self._pending += self.sim.read_ready()
            if self._pending:
                try:
                    n = os.write(self._master, self._pending)
                    del self._pending[:n]
                except BlockingIOError:
                    pass
                except OSError:
                    return

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class PowerKeyFollower:
    """Follow the power-key file a host board writes (scripts/run_host.py --power-key PATH: one line per change
    of the modem power-key pin, `1` pressed, `0` released, flushed at once) and press the simulated key with the
    time each line was read. The file is created when missing; lines already in it are history and skipped
    (a restarted firmware appends to the same file). `.events` = [(ms, pressed)], `.bad` = lines that were
    neither 0 nor 1 (a host bug: also printed on stderr)."""

    def __init__(self, sim, path, poll_ms=2):
        self.sim = sim
        self.path = path
        self.poll_ms = poll_ms
        self.events = []
        self.bad = []
        with open(path, "ab"):
            pass
        self._offset = os.path.getsize(path)
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim7600-power-key", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.poll_ms / 1000.0):
            self.poll()

    def poll(self):
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return
        if size < self._offset:  # truncated/recreated: start again from its beginning
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(size - self._offset)
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for ln in lines:
            ln = ln.strip()
            if ln not in (b"0", b"1"):
                self.bad.append(ln)
                sys.stderr.write("sim7600: power-key file %s: bad line %r (expected 0 or 1)\n" % (self.path, ln))
                continue
            pressed = ln == b"1"
            self.events.append((self.sim._now(), pressed))
            self.sim.power_key(1 if pressed == bool(self.sim.power_key_active_high) else 0)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)


def _parse_hostport(s, default_port=1883):
    host, _, port = s.rpartition(":")
    if not host:
        return s, default_port
    return host, int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description="SIM7600 simulator on a pty")
    ap.add_argument("--link", required=True, help="symlink to create pointing at the pty")
    ap.add_argument("--broker", help="HOST:PORT every CONNECT goes to (plain)")
    ap.add_argument("--tls-broker", help="HOST:PORT every CONNECT to port 8883 goes to")
    ap.add_argument("--map", action="append", default=[], help="NAME[:PORT]=HOST:PORT (repeatable)")
    ap.add_argument("--firmware", default="LE11B02SIM7600M21-A", help="AT+CGMR revision")
    ap.add_argument("--revision", default=None, help="ATI Revision (default: --firmware)")
    ap.add_argument("--log", help="transcript file (SENT/RECV format)")
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--power-key", metavar="PATH",
                    help="follow the host board's power-key file (run_host.py --power-key PATH): 1 pressed, 0 released")
    ap.add_argument("--powered", action="store_true", help="switch on at start (default: OFF until the key is pressed)")
    ap.add_argument("--ready", action="store_true", help="start booted and registered (no boot URCs)")
    ap.add_argument("--urc-between", type=float, default=0.0, metavar="P",
                    help="probability that a URC comes inside the next reply, before its final result")
    ap.add_argument("--seed", type=int, default=None, help="random seed (urc_between, garbage)")
    ap.add_argument("--local-broker", action="store_true", help="in-memory broker instead of a real one")
    args = ap.parse_args(argv)
    bmap = {}
    if args.broker:
        bmap["*"] = _parse_hostport(args.broker)
    if args.tls_broker:
        bmap["*:8883"] = _parse_hostport(args.tls_broker, 8883)
    for m in args.map:
        k, _, v = m.partition("=")
        bmap[k] = _parse_hostport(v)
    broker = None
    if args.local_broker:
        from peers.sim7600_mqtt import LocalBroker

        broker = LocalBroker()
    sim = Sim7600(
        firmware=args.firmware,
        revision=args.revision,
        time_scale=args.time_scale,
        broker=broker,
        broker_map=bmap,
        log=args.log,
        ready=args.ready,
        powered=args.powered,
        urc_between=args.urc_between,
        seed=args.seed,
    )
    pty = SimPty(sim)
    keys = PowerKeyFollower(sim, args.power_key) if args.power_key else None
    try:
        os.unlink(args.link)
    except FileNotFoundError:
        pass
    os.symlink(pty.path, args.link)
    print("sim7600 on %s -> %s, %s%s" % (args.link, pty.path, sim.power,
                                         ", power key from %s" % args.power_key if keys else ""), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    # faults from outside: SIGUSR1 = the module reboots on its own (an unasked RDY follows), SIGUSR2 = it loses
    # power (a brown-out: silent until the power key is pressed again)
    signal.signal(signal.SIGUSR1, lambda *a: sim.reboot())
    signal.signal(signal.SIGUSR2, lambda *a: sim.power_off())
    try:
        while not stop.wait(0.2):
            if sim.internal_errors:  # a bug of the simulator: stop loudly rather than serve a wrong module
                print("sim7600: simulator bug (traceback above); stopping", file=sys.stderr, flush=True)
                return 70
    finally:
        if keys:
            keys.close()
        pty.close()
        sim.close()
        try:
            os.unlink(args.link)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
