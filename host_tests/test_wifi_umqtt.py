"""net.wifi.WifiPublisher on the REAL umqtt.simple (micropython-lib's, the copy `make venv` fetches into
.venv/mip-cache: scripts/mip_index.py) against a real mosquitto that is stopped and started again on the same
port: connect, publish, broker gone, the publisher reconnects and publishes again, and a persistent paho
subscriber receives every record once, in order.

One scenario script runs on both runtimes: under the 32-bit MicroPython (umqtt as on the board) and under CPython.
umqtt.simple is MicroPython code: it imports usocket/ustruct/ubinascii and calls read(n)/write(buf, n) on its
socket, which CPython's socket has not. For the CPython run the test writes those three modules as thin stand-ins
(MP_SOCKET: MicroPython's socket stream semantics over CPython's socket); the MQTT code is umqtt's own, unchanged.
"""
import os
import queue
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from mphost import FIRMWARE, spawn_mp
from peers.broker import MOSQUITTO, Broker

sys.path.insert(0, os.path.join(os.path.dirname(FIRMWARE), "scripts"))
import mip_index  # noqa: E402

N = 10  # records before the broker stops, and after
TOPIC = "wu/wifi-umqtt-1/data"
DOWN_S = 1.0  # how long the broker stays down while the publisher tries to reconnect

SCRIPT = r"""
import sys
import asyncio
from net.wifi import WifiPublisher

async def go(port, n):
    p = WifiPublisher("wifi-umqtt-1", "127.0.0.1", port, keepalive=30, poll_ms=20, backoff_ms=100, max_attempts=12,
                      io_timeout_ms=3000)
    await p.connect()
    import umqtt.simple as u
    print("UMQTT", u.__file__, type(p.client.sock).__name__)
    for i in range(n):
        await p.publish("%s", b"rec%%d" %% i, 1)
    print("HALF", p.stats["published"])
    sys.stdin.readline()  # the broker has stopped: it comes back while these are published
    for i in range(n, 2 * n):
        await p.publish("%s", b"rec%%d" %% i, 1)
    s = p.stats
    print("STATS", s["connects"], s["reconnects"], s["published"], s["resends"], s["errors"])
    print("LAST", s["last_error"])
    await p.disconnect()
    print("DONE")

asyncio.run(go(int(sys.argv[1]), int(sys.argv[2])))
""" % (TOPIC, TOPIC)

# MicroPython's socket as umqtt.simple uses it: read(n) blocks until n bytes (fewer at EOF, b"" at EOF), None on a
# non-blocking socket with nothing to read; write(buf, n) writes buf[:n] entirely. A timeout is an OSError.
MP_SOCKET = r'''
import socket as _s
from socket import getaddrinfo  # noqa: F401


class socket(_s.socket):
    def read(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.recv(n - len(buf))
            except BlockingIOError:
                return buf or None
            if not chunk:
                break
            buf += chunk
        return buf

    def write(self, data, n=None):
        data = bytes(data if n is None else data[:n])
        self.sendall(data)
        return len(data)
'''


def _umqtt_path():
    path = os.path.join(mip_index.CACHE, mip_index.PACKAGE)
    if not mip_index._files(path):
        pytest.skip("umqtt.simple not installed: make venv fetches micropython-lib's copy into %s" % mip_index.CACHE)
    return path


class Sub:
    """A persistent-session subscriber (clean_session False, QoS 1): what arrives while it reconnects after the
    broker's restart is kept for it by the broker (persistence=True)."""

    def __init__(self, port):
        self.got = queue.Queue()
        self.connects = 0
        self.subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wu-sub", clean_session=False)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = self._on_message
        self.redelivered = []  # the broker's own re-deliveries (DUP) of what this subscriber already had
        self.seen = set()
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()
        assert self.subscribed.wait(10), "subscriber not subscribed"

    def _on_message(self, c, u, m):
        # QoS 1 between the broker and this subscriber is at least once too: a message whose PUBACK was in flight
        # when the broker stopped is delivered again with DUP set after the restart (seen in a loaded CI run:
        # rec9, published and acked before the stop, arrived twice). That is the subscriber's leg, not the
        # publisher's resend, which the test judges: such a copy is counted apart.
        if m.dup and (m.topic, m.payload) in self.seen:
            self.redelivered.append(m.payload)
            return
        self.seen.add((m.topic, m.payload))
        self.got.put((m.topic, m.payload))

    def _on_connect(self, c, u, flags, rc, props):
        self.connects += 1
        if self.connects == 1:
            c.subscribe(TOPIC, 1)

    def take(self, n, timeout=20):
        out = []
        deadline = time.time() + timeout
        while len(out) < n and time.time() < deadline:
            try:
                out.append(self.got.get(timeout=0.1))
            except queue.Empty:
                pass
        time.sleep(0.3)  # a duplicate would arrive now
        while not self.got.empty():
            out.append(self.got.get())
        return out

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _cpython(script, port, umqtt, shims):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([FIRMWARE, umqtt, shims]))
    return subprocess.Popen([sys.executable, "-u", script, str(port), str(N)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _micropython(script, port, umqtt, shims):
    return spawn_mp(script, [port, N], heap="128K", extra_path=[umqtt], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("runtime", ["cpython", pytest.param("micropython", marks=pytest.mark.micropython)])
def test_real_umqtt_reconnects_after_a_broker_restart_and_loses_nothing(runtime, tmp_path):
    umqtt = _umqtt_path()
    if not MOSQUITTO:
        pytest.skip("mosquitto not installed (the broker restart needs it)")
    script = tmp_path / "wifi_restart.py"
    script.write_text(SCRIPT)
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "usocket.py").write_text(MP_SOCKET)
    (shims / "ustruct.py").write_text("from struct import *  # noqa: F403\n")
    (shims / "ubinascii.py").write_text("from binascii import *  # noqa: F403\n")
    broker = Broker(workdir=str(tmp_path), persistence=True).start()
    sub = p = None
    back = threading.Timer(DOWN_S, broker.resume)
    lines = []
    try:
        sub = Sub(broker.port)
        p = (_cpython if runtime == "cpython" else _micropython)(str(script), broker.port, umqtt, str(shims))
        for line in p.stdout:
            lines.append(line)
            if line.startswith("HALF") or line.startswith("Traceback"):
                break
        assert lines and lines[-1].startswith("HALF %d" % N), "".join(lines)
        port = broker.port
        broker.pause()  # every connection drops: the publisher's umqtt socket sees EOF / a reset
        back.start()
        p.stdin.write("go\n")
        p.stdin.flush()
        rest, _ = p.communicate(timeout=120)
        out = "".join(lines) + rest
        assert p.returncode == 0, out
        assert broker.port == port
        msgs = sub.take(2 * N)
        assert sub.connects == 2, "the subscriber did not see the restart (%d connects)" % sub.connects
    finally:
        if p is not None and p.poll() is None:
            p.kill()
        if sub is not None:
            sub.close()
        back.cancel()
        if back.is_alive():
            back.join()
        broker.stop()  # after the timer: a resume() can no longer follow it
    # the real umqtt ran: micropython-lib's file, its socket wrapped by the firmware's TimedSocket
    um = [ln.split() for ln in out.splitlines() if ln.startswith("UMQTT ")]
    assert um and um[0][1].startswith(umqtt) and um[0][1].endswith(os.path.join("umqtt", "simple.py")), out
    assert um[0][2] == "TimedSocket", out
    stats = [ln.split()[1:] for ln in out.splitlines() if ln.startswith("STATS ")]
    connects, reconnects, published, resends, errors = (int(x) for x in stats[0])
    # one reconnect; the record whose PUBLISH met the dead socket was sent again once; the refused connects while
    # the broker was down are counted as errors
    assert (connects, reconnects, published, resends) == (2, 1, 2 * N, 1), out
    assert errors >= 2, out
    assert "DONE" in out, out
    # every record, once, in order: none lost across the restart, none duplicated by the resend
    assert [t for t, _ in msgs] == [TOPIC] * len(msgs)
    assert [m for _, m in msgs] == [b"rec%d" % i for i in range(2 * N)], msgs
