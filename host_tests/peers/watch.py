"""A paho subscriber to one device's messages (status, event, ...) with their arrival times, for the
end-to-end tests that watch a firmware run through the broker (test_fleet_e2e, test_fleet_ota_e2e)."""
import json
import threading
import time


class Watcher:
    """Subscribes to <prefix>/<device>/<kind> for each kind (QoS 1); `ready` is set once subscribed."""

    def __init__(self, port, device, kinds=("status",), prefix="fm", client_id="e2e-watch"):
        import paho.mqtt.client as mqtt

        self.msgs = []  # (arrival monotonic s, kind, payload)
        self.lock = threading.Lock()
        self.ready = threading.Event()
        topics = [("%s/%s/%s" % (prefix, device, k), 1) for k in kinds]
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(topics)
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = self._msg
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        self.c = c

    def _msg(self, client, userdata, m):
        with self.lock:
            self.msgs.append((time.monotonic(), m.topic.rsplit("/", 1)[1], json.loads(m.payload)))

    def of(self, kind, since=0.0):
        """[(arrival, payload)] of the kind's messages since `since`."""
        with self.lock:
            return [(t, d) for t, k, d in self.msgs if k == kind and t >= since]

    def wait(self, kind, pred, timeout, what="as expected"):
        """The first message of the kind for which pred(payload) holds, waiting up to timeout s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for _t, d in self.of(kind):
                if pred(d):
                    return d
            time.sleep(0.2)
        raise AssertionError("no %s message %s within %s s: %s" % (
            kind, what, timeout, [d for _t, d in self.of(kind)[-3:]]))

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()
