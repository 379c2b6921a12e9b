# WifiPublisher: net.publisher.Publisher over micropython-lib's umqtt.simple (installed on the
# board with `mpremote mip install umqtt.simple`; imported lazily, never copied here).
#
#   pub = WifiPublisher(client_id, host, port=1883, user=None, password=None, keepalive=60,
#                       ssl=None, wlan=None, ssid=None, wifi_password=None, clock=None)
#   await pub.connect()        # joins WiFi (wlan injected by the board layer), MQTT CONNECT
#   await pub.publish(t, p, 1) # umqtt returns after PUBACK for QoS 1; reconnects and resends
#   await pub.subscribe(t, 1)  # remembered and re-subscribed after reconnects
#   ctx = net.wifi_tls.tls_context(certs, verify)  # boot only: an SSLContext that verifies, or WifiError
# A task polls check_msg() every poll_ms (delivering to on_message) and pings at keepalive/2.
# umqtt.simple is blocking and has no QoS 2: QoS 2 is sent as QoS 1 (at least once).
# Every socket operation is bounded by io_timeout_ms (a broker that stalls mid-packet must not
# freeze the loop): the connect gets it where umqtt.simple's connect() takes a timeout (>= 1.5),
# every later read/write through TimedSocket, which keeps the timeout across umqtt's
# setblocking(True) calls. A timeout is an OSError: the link is dropped and re-made.
# Incoming messages: the client's wait_msg() (what check_msg, publish and subscribe call) is this
# module's _wait_msg, which reads each PUBLISH by its announced lengths: above RX_TOPIC_CAP /
# RX_PAYLOAD_CAP (the cellular path's caps, modem/codes.py) the message is read past in 256-byte
# pieces before anything of its size is allocated, acknowledged (QoS 1), counted
# (stats["rx_dropped"]) and logged once; the link and the next message are unaffected.
import asyncio

from core.compat import DEFAULT_CLOCK
from net.publisher import NetError, NotConnected, Publisher, backoff_ms, jitter_pick


class WifiError(NetError):
    pass


UMQTT_OLD = (
    "broker.tls: this umqtt.simple (1.3.x) ignores the SSL context, the broker would not be verified; "
    "install the current one from micropython-lib (mpremote mip install umqtt.simple)"
)


class TimedSocket:
    """The socket umqtt.simple holds, with every blocking call bounded by `timeout_s`:
    setblocking(True) (umqtt's wait_msg after each first byte) means 'blocking, up to timeout_s'."""

    def __init__(self, sock, timeout_s):
        self.sock = sock
        self.timeout_s = timeout_s
        sock.settimeout(timeout_s)

    def setblocking(self, flag):
        self.sock.settimeout(self.timeout_s if flag else 0)

    def read(self, *n):
        return self.sock.read(*n)

    def write(self, *a):
        return self.sock.write(*a)

    def close(self):
        self.sock.close()


RX_TOPIC_CAP = 256  # = modem.codes.RX_TOPIC_CAP / RX_PAYLOAD_CAP (a test keeps them equal)
RX_PAYLOAD_CAP = 2048


def _read(s, n, keep=True):
    # exactly n bytes from the socket, or (keep=False) read past them in 256-byte pieces -> b"";
    # the broker closing the link mid-message is an OSError, as in umqtt.simple's own reads
    d = b""
    while n > 0:
        k = s.read(n if keep else min(n, 256))
        if not k:
            raise OSError(-1)
        n -= len(k)
        if keep:
            d = d + k if d else k
    return d


def _b(x):
    return x.encode() if isinstance(x, str) else bytes(x)


class WifiPublisher(Publisher):
    def __init__(
        self,
        client_id,
        host,
        port=1883,
        user=None,
        password=None,
        keepalive=60,
        ssl=None,
        clean=True,
        will=None,
        wlan=None,
        ssid=None,
        wifi_password=None,
        clock=None,
        client_factory=None,
        poll_ms=100,
        max_attempts=6,
        backoff_ms=500,
        backoff_max_ms=30000,
        max_resends=3,
        wifi_timeout_ms=20000,
        io_timeout_ms=15000,
        log=None,
    ):
        Publisher.__init__(self)
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.clean = clean
        self.will = will
        self.wlan = wlan
        self.ssid = ssid
        self.wifi_password = wifi_password
        self.clock = clock or DEFAULT_CLOCK
        self._factory = client_factory
        self.poll_ms = poll_ms
        self.max_attempts = max_attempts
        self.backoff_ms = backoff_ms
        self.backoff_max_ms = backoff_max_ms
        self.max_resends = max_resends
        self.wifi_timeout_ms = wifi_timeout_ms
        self.io_timeout_ms = io_timeout_ms
        self.log = log
        self.client = None
        self._up = False
        self._ever = False
        self._task = None
        self._lock = asyncio.Lock()
        self._last_io = 0
        self.stats["resends"] = 0
        self.stats["rx_dropped"] = 0

    # ------------------------------------------------------------------ link
    def connected(self):
        if self.wlan is not None and not self.wlan.isconnected():
            return False
        return self._up

    def _down(self, e):
        self._up = False
        self._error(e)
        c = self.client
        self.client = None
        if c is not None:
            try:
                c.sock.close()
            except Exception:  # noqa: BLE001 - best effort on a dead socket
                pass

    async def _join_wifi(self):
        w = self.wlan
        if w is None or w.isconnected():
            return
        if not self.ssid:
            raise WifiError("WiFi is not connected and no SSID is configured (secrets wifi_ssid)")
        w.active(True)
        w.connect(self.ssid, self.wifi_password or "")
        t0 = self.clock.ticks_ms()
        while not w.isconnected():
            if self.clock.since(t0) > self.wifi_timeout_ms:
                raise WifiError("could not join WiFi %r within %d ms" % (self.ssid, self.wifi_timeout_ms))
            await self.clock.sleep_ms(200)

    def _make_client(self):
        if self._factory is not None:
            return self._factory(self)
        from umqtt.simple import MQTTClient  # micropython-lib, installed with mip

        kw = {}
        if self.ssl is not None:
            kw["ssl"] = self.ssl
        c = MQTTClient(_b(self.client_id), self.host, self.port, self.user, self.password, self.keepalive, **kw)
        if self.ssl is not None and hasattr(c, "ssl_params"):
            # umqtt.simple 1.3.x (PyPI's) wraps with ussl.wrap_socket(sock, **ssl_params): the
            # context, its CA and the host name would be ignored, an unverified link
            raise WifiError(UMQTT_OLD)
        return c

    async def _connect_once(self):
        await self._join_wifi()
        c = self._make_client()
        c.set_callback(self._on_msg)
        c.wait_msg = self._wait_msg  # incoming PUBLISHes read by their announced lengths (above)
        if self.will:
            t, m, q = self.will
            c.set_last_will(_b(t), _b(m), False, min(q, 1))
        self.client = c  # _down() closes its socket if the connect fails half-way
        ts = self.io_timeout_ms / 1000
        try:
            c.connect(self.clean, timeout=ts)  # umqtt.simple >= 1.5: a socket timeout from the start
        except TypeError:  # older umqtt.simple: connect(clean_session) only (the argument binding fails)
            c.connect(self.clean)
        sock = getattr(c, "sock", None)
        if sock is not None and hasattr(sock, "settimeout") and not isinstance(sock, TimedSocket):
            c.sock = TimedSocket(sock, ts)
        self._up = True
        self._last_io = self.clock.ticks_ms()
        for t, q in self._subs:
            c.subscribe(_b(t), min(q, 1))

    def _backoff(self, attempt):
        return backoff_ms(attempt, self.backoff_ms, self.backoff_max_ms, jitter_pick)

    async def _connect(self):
        attempt = 0
        while True:
            try:
                await self._connect_once()
                break
            except Exception as e:  # noqa: BLE001 - umqtt raises OSError / MQTTException, we raise NetError
                self._down(e)
                if isinstance(e, WifiError) and e.msg == UMQTT_OLD:
                    raise  # retrying cannot fix it
                attempt += 1
                if attempt >= self.max_attempts:
                    raise NotConnected("MQTT over WiFi: connect to %s:%d failed after %d attempts: %s" % (self.host, self.port, attempt, e))
                await self.clock.sleep_ms(self._backoff(attempt))
        if self._ever:
            self.stats["reconnects"] += 1
        self._ever = True
        self.stats["connects"] += 1
        if self._task is None:
            self._task = asyncio.create_task(self._poller())

    # ------------------------------------------------------------------ I/O
    def _wait_msg(self):
        """The client's wait_msg(): one incoming packet. A PUBLISH is read here, by its announced
        lengths (MQTT 3.1.1 fixed header: type 3, QoS in bits 1-2, remaining length as a varint);
        PINGRESP is consumed; any other type is returned for the client to read (PUBACK, SUBACK)."""
        s = self.client.sock  # pyright: ignore[reportOptionalMemberAccess] - called by that client only
        b = s.read(1)
        s.setblocking(True)
        if b is None:
            return None
        if not b:
            raise OSError(-1)
        op = b[0]
        if op == 0xD0:  # PINGRESP
            _read(s, 1)
            return None
        if op & 0xF0 != 0x30:
            return op
        n = sh = 0
        while True:  # remaining length
            b = _read(s, 1)[0]
            n |= (b & 0x7F) << sh
            if b < 0x80:
                break
            sh += 7
            if sh > 21:
                raise OSError("MQTT: malformed PUBLISH")
        q = op & 6
        b = _read(s, 2)
        tl = b[0] << 8 | b[1]
        n -= tl + (4 if q else 2)  # -> the payload's length
        if n < 0 or q > 2:  # QoS 2 is never granted: we subscribe at QoS 1 at most
            raise OSError("MQTT: malformed PUBLISH")
        ok = tl <= RX_TOPIC_CAP and n <= RX_PAYLOAD_CAP
        t = _read(s, tl, ok)
        pid = _read(s, 2) if q else b""
        m = _read(s, n, ok)
        if ok:
            self._on_msg(t, m)
        else:
            self.stats["rx_dropped"] += 1
            if self.log:
                self.log.warn("incoming message dropped: topic %d / payload %d bytes announced, over %d / %d", tl, n, RX_TOPIC_CAP, RX_PAYLOAD_CAP)
        if q:
            s.write(b"\x40\x02" + pid)  # PUBACK (a refused message too: the broker must not resend it)
        return None

    def _on_msg(self, topic, msg):
        try:
            t = str(topic, "utf-8")
        except UnicodeError:
            t = repr(topic)
        self._deliver(t, bytes(msg))

    async def _poller(self):
        while self._task is not None:
            await self.clock.sleep_ms(self.poll_ms)
            if not self._up or self.client is None:
                continue
            async with self._lock:
                try:
                    self.client.check_msg()
                    if self.keepalive and self.clock.since(self._last_io) > self.keepalive * 500:
                        self.client.ping()
                        self._last_io = self.clock.ticks_ms()
                except Exception as e:  # noqa: BLE001 - OSError on a broken socket, MQTTException
                    self._down(e)

    async def _io(self, fn, *args):
        tries = 0
        while True:
            if not self.connected():
                await self.connect()
            async with self._lock:
                try:
                    r = fn(self.client, *args)
                    self._last_io = self.clock.ticks_ms()
                    return r
                except Exception as e:  # noqa: BLE001
                    self._down(e)
                    tries += 1
                    if tries > self.max_resends:
                        raise NotConnected("MQTT over WiFi: %s" % e)
                    self.stats["resends"] += 1

    async def publish(self, topic, payload, qos=1):
        await self._io(_pub, _b(topic), _b(payload), min(qos, 1))
        self.stats["published"] += 1

    async def subscribe(self, topic, qos=1):
        """As CellularPublisher.subscribe: remembered, and not sent again while the session has it."""
        known = self._remember(topic, qos)
        if not self.connected():
            await self.connect()  # subscribes every remembered topic, this one included
            return
        if not known:
            await self._io(_sub, _b(topic), min(qos, 1))

    async def disconnect(self):
        t = self._task
        self._task = None
        if t is not None:
            t.cancel()
        c = self.client
        self._up = False
        self.client = None
        if c is not None:
            try:
                c.disconnect()
            except Exception:  # noqa: BLE001
                pass


def _pub(c, t, p, q):
    c.publish(t, p, False, q)


def _sub(c, t, q):
    c.subscribe(t, q)
