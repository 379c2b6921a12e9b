# mp-heap: 48K  (a 60,000-byte message could not be allocated here: it must never be)
# net.wifi's incoming PUBLISH reader (WifiPublisher._wait_msg, installed as the client's wait_msg, which
# umqtt.simple's check_msg/publish/subscribe call): a message is refused by its announced lengths
# before anything of its size is allocated, read past in small pieces, PUBACKed, counted and logged
# once, and the next message is delivered. The client here is a fake with umqtt.simple's calling
# convention (check_msg -> setblocking(False) -> self.wait_msg()); the real umqtt.simple against
# mosquitto is in host_tests/test_wifi_timeouts.py.
from modem import codes
from net.wifi import RX_PAYLOAD_CAP, RX_TOPIC_CAP, WifiPublisher


class Sock:
    """Bytes the broker sends: queued parts, an int part is that many filler bytes made on demand."""

    def __init__(self):
        self.q = []
        self.written = []
        self.blocking = True
        self.biggest = 0  # the largest read asked for
        self.closed = False

    def feed(self, *parts):
        self.q.extend(parts)

    def setblocking(self, flag):
        self.blocking = flag

    def read(self, n):
        if not self.q:
            return b"" if self.blocking else None  # blocking and nothing more: the broker closed
        self.biggest = max(self.biggest, n)
        h = self.q[0]
        if isinstance(h, int):
            k = min(n, h)
            if h > k:
                self.q[0] = h - k
            else:
                self.q.pop(0)
            return b"B" * k
        d = h[:n]
        if len(h) > n:
            self.q[0] = h[n:]
        else:
            self.q.pop(0)
        return d

    def write(self, b, n=None):
        self.written.append(bytes(b))
        return len(b)

    def close(self):
        self.closed = True


class Client:
    """umqtt.simple.MQTTClient's shape, as far as WifiPublisher and wait_msg's callers use it."""

    def __init__(self, pub):
        self.sock = Sock()

    def set_callback(self, f):
        self.cb = f

    def connect(self, clean_session=True, timeout=None):
        return False

    def subscribe(self, topic, qos=0):
        pass

    def check_msg(self):
        self.sock.setblocking(False)
        return self.wait_msg()

    def ping(self):
        pass

    def disconnect(self):
        pass


class Log:
    def __init__(self):
        self.warns = []

    def warn(self, fmt, *a):
        self.warns.append(fmt % a)


def publish(topic, plen, qos=1, pid=7):
    """The head of an MQTT PUBLISH: fixed header (remaining length as a varint), topic, packet id."""
    t = topic.encode()
    tl = len(t)
    rem = 2 + tl + (2 if qos else 0) + plen
    h = bytearray([0x30 | qos << 1])
    while True:
        b = rem & 0x7F
        rem >>= 7
        h.append(b | 0x80 if rem else b)
        if not rem:
            break
    h += bytes([tl >> 8, tl & 255]) + t
    if qos:
        h += bytes([pid >> 8, pid & 255])
    return bytes(h)


async def _pub():
    log = Log()
    p = WifiPublisher("d", "h", 1883, client_factory=Client, log=log, poll_ms=100000)
    got = []
    p.on_message(lambda t, m: got.append((t, m)))
    await p.connect()
    return p, p.client, p.client.sock, got, log


def test_caps_are_the_cellular_paths():
    assert (RX_TOPIC_CAP, RX_PAYLOAD_CAP) == (codes.RX_TOPIC_CAP, codes.RX_PAYLOAD_CAP) == (256, 2048)


async def test_oversized_retained_command_is_refused_and_the_next_is_delivered():
    p, c, s, got, log = await _pub()
    s.feed(publish("fm/d/cmd", 60000, pid=7), 60000, publish("fm/d/cmd", 2, pid=8), b"ok")
    assert c.check_msg() is None
    assert got == [] and p.stats["rx_dropped"] == 1
    assert s.biggest <= 256  # read past in pieces: nothing of the message's size was allocated
    assert c.check_msg() is None
    assert got == [("fm/d/cmd", b"ok")]
    assert s.written == [b"\x40\x02\x00\x07", b"\x40\x02\x00\x08"]  # both acknowledged: no resend
    assert len(log.warns) == 1 and "payload 60000 bytes" in log.warns[0] and "2048" in log.warns[0]
    assert p.connected() and p.stats["errors"] == 0 and s.q == []
    assert c.check_msg() is None  # nothing more: non-blocking read, no error
    await p.disconnect()


async def test_limits_are_inclusive_and_the_topic_has_its_own():
    p, c, s, got, log = await _pub()
    s.feed(publish("t", RX_PAYLOAD_CAP, qos=0), RX_PAYLOAD_CAP)  # at the cap: delivered
    s.feed(publish("t", RX_PAYLOAD_CAP + 1, qos=0), RX_PAYLOAD_CAP + 1)  # one over
    long_topic = "x" * (RX_TOPIC_CAP + 1)
    s.feed(publish(long_topic, 3, qos=1, pid=9), b"abc")  # small payload, topic over its cap
    s.feed(publish("y" * RX_TOPIC_CAP, 1, qos=0), b"z")
    for _ in range(4):
        c.check_msg()
    assert [(t, len(m)) for t, m in got] == [("t", RX_PAYLOAD_CAP), ("y" * RX_TOPIC_CAP, 1)]
    assert p.stats["rx_dropped"] == 2 and len(log.warns) == 2
    assert "topic %d" % (RX_TOPIC_CAP + 1) in log.warns[1]
    assert s.written == [b"\x40\x02\x00\x09"]  # QoS 0 messages get no PUBACK
    await p.disconnect()


async def test_other_packets_are_left_to_the_client():
    p, c, s, got, log = await _pub()
    s.feed(b"\xd0\x00", b"\x40\x02\x00\x01")
    assert c.check_msg() is None and s.q == [b"\x40\x02\x00\x01"]  # PINGRESP consumed
    assert c.check_msg() == 0x40 and s.q == [b"\x02\x00\x01"]  # PUBACK: the client reads the rest
    await p.disconnect()


async def test_malformed_or_cut_short_messages_drop_the_link():
    p, c, s, got, log = await _pub()
    s.feed(b"\x30\x05\x00\x28abc")  # remaining length 5, topic length 40
    try:
        c.check_msg()
        raise AssertionError("no error")
    except OSError as e:
        assert "malformed" in str(e)
    p2, c2, s2, got2, _ = await _pub()
    s2.feed(publish("t", 5000), 1000)  # the broker closes mid-message
    try:
        c2.check_msg()
        raise AssertionError("no error")
    except OSError:
        pass
    assert got == got2 == [] and p2.stats["rx_dropped"] == 0
    await p.disconnect()
    await p2.disconnect()


async def test_the_poller_survives_a_refusal_and_a_broken_link_is_dropped():
    p, c, s, got, log = await _pub()
    p.poll_ms = 1
    s.feed(publish("fm/d/cmd", 30000, qos=0), 30000, publish("fm/d/cmd", 2, qos=0), b"hi")
    for _ in range(50):
        await p.clock.sleep_ms(2)
        if got:
            break
    assert got == [("fm/d/cmd", b"hi")] and p.stats["rx_dropped"] == 1 and p.connected()
    s.feed(b"\x30\xff\xff\xff\xff\x01")  # a remaining length of five bytes
    for _ in range(50):
        await p.clock.sleep_ms(2)
        if not p.connected():
            break
    assert not p.connected() and s.closed and "malformed" in p.stats["last_error"]
    await p.disconnect()
