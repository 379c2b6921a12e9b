# mp-heap: 192K  (AT engine + CMQTT client + strict fake modem + cases resident at once on the 64-bit port)
# modem.cmqtt incoming messages and the busy gate, on both runtimes against cmqttfake.FakeCmqtt.
import asyncio

from cmqttfake import setup, until, up
from core.compat import sleep_ms


# ------------------------------------------------------------------------------- incoming / gate


async def test_incoming_message_with_crlf_over_1500_bytes():
    m, at, mq = setup()
    got = []
    mq.on_message(lambda t, p: got.append((t, p)))
    await up(m, mq)
    payload = bytes((i * 7) % 256 for i in range(1900)).replace(b"\r", b"\r\n")  # > one 1500-byte chunk, <= the cap
    payload = b"\r\nOK\r\n+CMQTTRXEND: 0\r\n" + payload  # looks like protocol, is data
    m.feed(m.rx_message("cmd/dev1", payload))
    m.feed(m.rx_message("cmd/dev1", b""))  # empty payload: no RXPAYLOAD chunk at all
    assert await until(lambda: len(got) == 2)
    assert got[0] == ("cmd/dev1", payload)
    assert got[1] == ("cmd/dev1", b"")
    assert mq.stats["rx_dropped"] == 0 and mq.stats["rx"] == 2
    at.stop()


async def test_the_receive_path_is_loaded_per_line_and_gone_when_the_message_is_delivered():
    # RAM: modem/cmqtt_rx.py puts a message together, imported for each RX line and dropped after it; the
    # callback runs with it gone (the command it brings then has that heap)
    import sys

    m, at, mq = setup()
    got = []
    mq.on_message(lambda t, p: got.append((t, p, "modem.cmqtt_rx" in sys.modules)))
    await up(m, mq)
    assert "modem.cmqtt_rx" not in sys.modules
    head, tail = m.rx_message("cmd/dev1", b"hello", split=True)
    m.feed(head)
    assert await until(lambda: mq.rx_in_flight())
    assert "modem.cmqtt_rx" not in sys.modules  # between two lines of a message too
    m.feed(tail)
    assert await until(lambda: len(got) == 1)
    assert got == [("cmd/dev1", b"hello", False)] and "modem.cmqtt_rx" not in sys.modules
    at.stop()


async def test_no_memory_for_the_receive_path_drops_the_message_and_opens_the_gate():
    # the import of modem/cmqtt_rx.py failing (no heap for it) at each line of a message: dropped and counted
    # once, the RX gate open again at its end; the next message is delivered
    import sys

    class NoRoom:
        def urc(self, c, line, body):
            raise MemoryError("test")

    m, at, mq = setup()
    got = []
    mq.on_message(lambda t, p: got.append((t, p)))
    await up(m, mq)
    sys.modules["modem.cmqtt_rx"] = NoRoom()  # (what lookup imports: a module in sys.modules is used as is)
    try:
        head, tail = m.rx_message("cmd/dev1", b"lost", split=True)
        m.feed(head)
        assert await until(lambda: mq.rx_in_flight())
        m.feed(tail)
        assert await until(lambda: mq.stats["rx_dropped"] == 1)
        assert not mq.rx_in_flight() and got == [] and mq.stats["rx"] == 0
    finally:
        del sys.modules["modem.cmqtt_rx"]
    m.feed(m.rx_message("cmd/dev1", b"ok"))
    assert await until(lambda: got == [("cmd/dev1", b"ok")])
    assert mq.stats["rx_dropped"] == 1 and mq.stats["rx"] == 1
    await mq.publish("t", b"x")  # at once: the gate is open
    assert m.busy_hits == 0
    at.stop()


async def test_sub_while_rx_burst_in_flight_waits_for_rxend():
    # the seed's second failure: SUB sent while the modem was busy -> 0,14. Here a retained
    # message streams in; the SUB must wait for +CMQTTRXEND.
    m, at, mq = setup()
    got = []
    mq.on_message(lambda t, p: got.append((t, p)))
    await up(m, mq)
    head, tail = m.rx_message("retained/x", b"A" * 2000, split=True)
    m.rx_busy = True
    m.feed(head)
    assert await until(lambda: mq.rx_in_flight())
    t = asyncio.create_task(mq.subscribe("cmd/#", 1))
    for _ in range(30):
        await sleep_ms(1)
    assert not any(c.startswith("AT+CMQTTSUB") for c in m.cmds)
    m.rx_busy = False
    m.feed(tail)
    await t
    assert m.subs == [b"cmd/#"]
    assert got == [("retained/x", b"A" * 2000)]
    assert m.busy_hits == 0
    at.stop()


async def test_busy_14_is_retried_after_the_gate():
    m, at, mq = setup()
    await up(m, mq)
    m.rx_busy = True  # the modem is busy but we have not seen RXSTART yet (a race)

    async def clear():
        await sleep_ms(50)
        m.rx_busy = False

    asyncio.create_task(clear())
    await mq.publish("t", b"x")
    assert m.busy_hits >= 1 and mq.stats["busy_retries"] >= 1
    assert m.pubs == [(b"t", b"x", 1)]
    at.stop()


async def test_subscribe_many_uses_subtopic():
    m, at, mq = setup()
    await up(m, mq)
    await mq.subscribe_many([("a/1", 1), ("b/2", 0)])
    assert "AT+CMQTTSUBTOPIC=0,3,1" in m.cmds and "AT+CMQTTSUBTOPIC=0,3,0" in m.cmds
    assert "AT+CMQTTSUB=0" in m.cmds
    assert m.subs == [b"a/1", b"b/2"]
    await mq.unsubscribe("a/1")
    assert "AT+CMQTTUNSUB=0,3,0" in m.cmds
    at.stop()


async def test_disc_query_not_sent_while_disc_in_flight():
    m, at, mq = setup()
    await up(m, mq)
    assert await mq.query_connected() is True
    m.hold.add("CMQTTDISC")
    t = asyncio.create_task(mq.disconnect())
    assert await until(lambda: "CMQTTDISC" in m.owed)
    q = asyncio.create_task(mq.query_connected())
    for _ in range(20):
        await sleep_ms(1)
    assert m.cmds[-1] == "AT+CMQTTDISC=0,60", m.cmds
    assert m.cmds.count("AT+CMQTTDISC?") == 1
    m.release("CMQTTDISC", 0)
    await t
    assert await q is False  # asked only after the DISC result
    assert m.cmds.count("AT+CMQTTDISC?") == 2
    assert not mq.connected() and m.busy_hits == 0
    at.stop()


async def test_will_and_binary_payload_cfg():
    m, at, mq = setup()
    await mq.start()
    await mq.acquire("dev1")
    await mq.set_will("dev1/status", "offline", 1)
    assert "AT+CMQTTWILLTOPIC=0,11" in m.cmds and "AT+CMQTTWILLMSG=0,7,1" in m.cmds
    assert b"dev1/status" in m.data and b"offline" in m.data
    at.stop()


async def _feed_drained(m, data):
    m.feed(data)
    st = m.stream
    assert await until(lambda: st._pos == len(st._rx))


async def test_oversized_announced_message_is_dropped_without_buffering():
    # issue 11 §2: a 60 KB message (e.g. retained on the command topic) is refused by the length
    # RXSTART announces: nothing of it is held, and the next command goes out at once after RXEND
    from modem import codes

    m, at, mq = setup()
    got = []
    mq.on_message(lambda t, p: got.append((t, p)))
    await up(m, mq)
    n = 60 * 1024
    await _feed_drained(m, b"\r\n+CMQTTRXSTART: 0,8,%d\r\n+CMQTTRXTOPIC: 0,8\r\ncmd/dev1" % n)
    assert mq.rx_in_flight() and mq._rx_buf == [None, None]
    chunk = b"\r\n+CMQTTRXPAYLOAD: 0,1500\r\n" + b"Z" * 1500
    left = n
    while left:
        k = min(left, 1500)
        await _feed_drained(m, chunk if k == 1500 else b"\r\n+CMQTTRXPAYLOAD: 0,%d\r\n" % k + b"Z" * k)
        left -= k
        assert mq._rx_buf[1] is None  # never buffered
    m.feed(b"\r\n+CMQTTRXEND: 0\r\n")
    assert await until(lambda: not mq.rx_in_flight())
    assert got == [] and mq.stats["rx_dropped"] == 1
    t0 = len(m.cmds)
    await mq.publish("t", b"x")  # would wait 30 s if the gate had stayed shut
    assert m.cmds[t0].startswith("AT+CMQTTTOPIC") and m.busy_hits == 0
    # a message at the cap is still delivered
    p = b"q" * codes.RX_PAYLOAD_CAP
    m.feed(m.rx_message("cmd/dev1", p))
    assert await until(lambda: len(got) == 1)
    assert got == [("cmd/dev1", p)]
    at.stop()


async def test_memory_error_mid_burst_leaves_no_state():
    m, at, mq = setup()
    got = []
    mq.on_message(lambda t, p: got.append((t, p)))
    await up(m, mq)
    msg = m.rx_message("cmd/dev1", b"P" * 1800)
    k = msg.index(b"\r\n+CMQTTRXPAYLOAD")
    await _feed_drained(m, msg[:k])  # RXSTART and the topic: the buffers of the announced sizes exist
    assert mq.rx_in_flight() and len(mq._rx_buf[1]) == 1800

    class NoRoom:  # the first payload chunk runs out of memory
        def __len__(self):
            return 1800

        def __setitem__(self, i, v):
            raise MemoryError("test")

    mq._rx_buf[1] = NoRoom()
    m.feed(msg[k:])
    assert await until(lambda: mq.stats["rx_dropped"] == 1)
    assert not mq.rx_in_flight() and mq._rx_buf == [None, None] and got == []
    m.feed(m.rx_message("cmd/dev1", b"ok"))
    assert await until(lambda: got == [("cmd/dev1", b"ok")])
    await mq.publish("t", b"x")
    assert m.busy_hits == 0
    at.stop()


async def test_more_bytes_than_announced_is_dropped():
    m, at, mq = setup()
    got = []
    mq.on_message(lambda t, p: got.append((t, p)))
    await up(m, mq)
    m.feed(b"\r\n+CMQTTRXSTART: 0,3,2\r\n+CMQTTRXTOPIC: 0,3\r\nabc\r\n+CMQTTRXPAYLOAD: 0,5\r\nhello\r\n+CMQTTRXEND: 0\r\n")
    assert await until(lambda: mq.stats["rx_dropped"] == 1)
    assert got == [] and not mq.rx_in_flight()
    at.stop()


async def test_older_firmware_accq_without_version_and_no_checkutf8():
    # issue 10 §7: ACCQ refusing the 4th (protocol version) argument -> retried without it;
    # CMQTTCFG="checkUTF8" refused -> carry on
    m, at, mq = setup()
    m.old_firmware = True
    await up(m, mq)
    assert m.cmds[1:4] == ['AT+CMQTTACCQ=0,"dev1",0,4', 'AT+CMQTTACCQ=0,"dev1",0', 'AT+CMQTTCFG="checkUTF8",0,0'], m.cmds
    assert mq.connected() and mq.acquired and not mq.accq_version
    await mq.release()
    await mq.acquire("dev1")  # remembered: no second try with the version argument
    assert m.cmds[-2:] == ['AT+CMQTTACCQ=0,"dev1",0', 'AT+CMQTTCFG="checkUTF8",0,0'], m.cmds
    at.stop()


class _Log:
    def __init__(self):
        self.lines = []

    def warn(self, fmt, *a):
        self.lines.append(fmt % a if a else fmt)


async def test_a_dropped_message_is_logged_with_its_reason():
    # the words come from modem/code_events.py when a message is dropped (not resident, nor the texts' tables)
    import sys

    log = _Log()
    m, at, mq = setup(log=log)
    await up(m, mq)
    m.feed(b"\r\n+CMQTTRXSTART: 0,8,60000\r\n+CMQTTRXTOPIC: 0,8\r\ncmd/dev1\r\n+CMQTTRXEND: 0\r\n")
    assert await until(lambda: len(log.lines) == 1)
    assert log.lines[0] == ("incoming message dropped: announced topic 8 / payload 60000 bytes, more than this "
                            "firmware accepts (256 / 2048)"), log.lines
    m.feed(b"\r\n+CMQTTRXSTART: 0,3,2\r\n+CMQTTRXTOPIC: 0,3\r\nabc\r\n+CMQTTRXPAYLOAD: 0,5\r\nhello\r\n+CMQTTRXEND: 0\r\n")
    assert await until(lambda: len(log.lines) == 2)
    assert log.lines[1] == "incoming message dropped: more bytes than announced", log.lines
    m.feed(b"\r\n+CMQTTRXSTART: 0,3,4\r\n+CMQTTRXTOPIC: 0,3\r\nabc\r\n+CMQTTRXPAYLOAD: 0,2\r\nhe\r\n+CMQTTRXEND: 0\r\n")
    assert await until(lambda: len(log.lines) == 3)
    assert log.lines[2] == "incoming message dropped: length mismatch: topic 3/3 payload 2/4", log.lines
    m.feed(b"\r\n+CMQTTRXEND: 0\r\n")
    assert await until(lambda: len(log.lines) == 4)
    assert log.lines[3] == "incoming message dropped: no +CMQTTRXSTART", log.lines
    assert "modem.code_events" not in sys.modules and "modem.code_texts" not in sys.modules
    assert mq.stats["rx_dropped"] == 4
    at.stop()
