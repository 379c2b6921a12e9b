# MicroPython end-to-end: the firmware's cellular MQTT stack over a serial path (the simulator's
# pty) publishes N QoS 1 messages "<seq>:<pad>" to a topic. Prints progress lines for the test:
#   CONNECT_MS <ms from CMQTTSTART to +CMQTTCONNECT: 0,0>
#   DONE published=<n> reconnects=<r> resends=<k> busy_retries=<b> mem_peak=<bytes>
# usage: micropython e2e_publish.py <pty> <broker_port> <n> <topic>
import asyncio
import sys

from at.engine import ATEngine
from core.compat import Clock
from core.stream import SerialPath
from net.cellular import CellularPublisher


async def main(path, port, n, topic):
    at = ATEngine(SerialPath(path), poll_ms=1)
    at.start()
    pub = CellularPublisher(at, Clock(), client_id="mp-e2e", host="127.0.0.1", port=port, backoff_ms=20,
                            modem_cfg={"poll_ms": 20})
    await pub.connect()
    print("CONNECT_MS", pub.stats["connect_ms"])
    pad = b"x" * 40
    for i in range(n):
        await pub.publish(topic, b"%d:" % i + pad, 1)
        if i % 100 == 99:
            print("PROGRESS", i + 1)
    await pub.disconnect()
    try:
        import micropython

        peak = micropython.mem_peak()
    except (ImportError, AttributeError):
        peak = -1
    print("DONE published=%d reconnects=%d resends=%d busy_retries=%d mem_peak=%d" % (
        pub.stats["published"], pub.stats["reconnects"], pub.stats["resends"], pub.mq.stats["busy_retries"], peak))
    at.stop()


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
