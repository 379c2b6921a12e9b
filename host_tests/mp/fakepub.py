# FakePublisher: the in-memory transport of the loop tests (moved out of firmware/net/publisher.py:
# the device never needs it). Runs on both runtimes.
from net.publisher import NetError, NotConnected, Publisher


class FakePublisher(Publisher):
    """In-memory transport for tests: `sent` holds (topic, payload, qos); `fail_next(n)` makes the
    next n publishes raise NetError; `up` switches the link; `inject(topic, payload)` simulates an
    incoming message."""

    def __init__(self):
        Publisher.__init__(self)
        self.sent = []
        self.subs = []
        self.up = True
        self._is_conn = False
        self._fail = 0

    def fail_next(self, n=1):
        self._fail = n

    async def connect(self):
        if not self.up:
            raise NetError("fake link is down")
        if self.stats["connects"]:
            self.stats["reconnects"] += 1
        self.stats["connects"] += 1
        self._is_conn = True

    def connected(self):
        return self._is_conn and self.up

    async def publish(self, topic, payload, qos=1):
        if not self.connected():
            e = NotConnected("publish while not connected", 11, "no connection")
            self._error(e)
            raise e
        if self._fail:
            self._fail -= 1
            self._is_conn = False
            e = NetError("injected publish failure", 11, "no connection")
            self._error(e)
            raise e
        self.sent.append((topic, bytes(payload), qos))
        self.stats["published"] += 1

    async def subscribe(self, topic, qos=1):
        if not self.connected():
            raise NotConnected("subscribe while not connected")
        self.subs.append((topic, qos))

    def inject(self, topic, payload):
        self._deliver(topic, payload)

    async def disconnect(self):
        self._is_conn = False
