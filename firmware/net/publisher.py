# The publisher interface the telelogger talks to, whatever the transport (SIM7600 CMQTT or
# WiFi umqtt). Transports subclass Publisher. The test double FakePublisher lives in
# host_tests/mp/fakepub.py. NetError and NotConnected are defined in core.errors (the layer every
# transport and driver can import) and re-exported here.
import asyncio
import random

from core.errors import NetError, NotConnected  # noqa: F401 - re-exported


def jitter_pick(n):
    """An int in 0..n-1 for backoff_ms (n < 65536)."""
    return random.getrandbits(16) % n if n > 0 else 0


def backoff_ms(n, ms, limit, pick):
    """Reconnect delay for the n-th failed attempt (1, 2, ...): exponential with jitter, a value in
    [b/2, b] where b = ms * 2^(n-1) capped at limit. pick(k) returns an int in 0..k-1, so tests
    can make it deterministic. One rule for every transport."""
    b = min(ms << min(n - 1, 16), limit)
    half = b // 2
    return half + pick(half + 1)


class Publisher:
    """The interface (firmware/ARCHITECTURE.md). `stats` keys: connects, reconnects, published,
    errors, last_error. A transport defines:
        async _connect()                     the connect itself (connect() below is single-flight)
        async publish(topic, payload, qos=1) returns once the broker has it (QoS 1: PUBACK)
        async subscribe(topic, qos=1)        remembered (_remember) and re-subscribed after reconnects
        connected() -> bool
        async disconnect()
    (no stubs here: on the ESP32 each would cost heap for nothing)."""

    def __init__(self):
        self.stats = {"connects": 0, "reconnects": 0, "published": 0, "errors": 0, "last_error": None}
        self._msg_cb = None
        self._subs = []  # [(topic, qos)] a transport re-subscribes after every reconnect
        self.lock = asyncio.Lock()  # connect() is single-flight

    async def connect(self):
        """Single-flight: a task that finds a connect already running waits for it instead of
        starting a second one (the SIM7600 refuses a second CONNECT with 19, client is used).
        Transports implement _connect()."""
        if self.connected():  # pyright: ignore[reportAttributeAccessIssue] - the transport's
            return
        async with self.lock:
            if not self.connected():  # pyright: ignore[reportAttributeAccessIssue]
                await self._connect()  # pyright: ignore[reportAttributeAccessIssue]

    def _remember(self, topic, qos):
        """Keep (topic, qos) for re-subscribing; True if the session already has it at this QoS."""
        known = (topic, qos) in self._subs
        for i in range(len(self._subs)):
            if self._subs[i][0] == topic:
                self._subs[i] = (topic, qos)
                return known
        self._subs.append((topic, qos))
        return known

    def on_message(self, cb):
        self._msg_cb = cb

    def _deliver(self, topic, payload):
        if self._msg_cb:
            self._msg_cb(topic, payload)

    def _error(self, e):
        self.stats["errors"] += 1
        self.stats["last_error"] = str(e)
