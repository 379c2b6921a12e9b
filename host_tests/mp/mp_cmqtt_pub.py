# mp-heap: 192K  (AT engine + CMQTT client + strict fake modem + cases resident at once on the 64-bit port)
# modem.cmqtt publish and URC-driven state, on both runtimes against cmqttfake.FakeCmqtt.
from cmqttfake import setup, until, up
from modem import cmqtt as C
from mptest import araises


# ------------------------------------------------------------------------------- publish / state


async def test_publish_sends_exact_bytes_at_each_qos():
    m, at, mq = setup()
    await up(m, mq)
    payload = b"line1\r\nline2\x00\xff"
    for q in (0, 1, 2):
        await mq.publish("fleet/1/data", payload, q)
    assert m.pubs == [(b"fleet/1/data", payload, q) for q in (0, 1, 2)]
    assert "AT+CMQTTPUB=0,2,60,0" in m.cmds
    assert "AT+CMQTTPAYLOAD=0,%d" % len(payload) in m.cmds
    at.stop()


async def test_a_text_published_as_its_buffer_goes_out_as_its_utf8_bytes():
    # telelogger/statusmsg.py hands a status's JSON text over as memoryview(text) on MicroPython (no second
    # copy of it for an encode): the PAYLOAD length and the bytes are its UTF-8 bytes, as for the encoded text
    from modem.errors import _to_bytes

    text = '{"cfg": "r\u00e9seau \u2713", "id": "CAR01"}'
    want = text.encode()
    try:
        buf = memoryview(text)
    except TypeError:  # CPython: a str has no buffer (statusmsg encodes it there)
        buf = memoryview(want)
    assert _to_bytes(buf) is buf  # not copied
    m, at, mq = setup()
    await up(m, mq)
    await mq.publish("fleet/1/status", buf, 1)
    assert m.pubs == [(b"fleet/1/status", want, 1)], m.pubs
    assert "AT+CMQTTPAYLOAD=0,%d" % len(want) in m.cmds and len(want) > len(text), m.cmds
    at.stop()


async def test_pub_error_result_and_no_connection():
    m, at, mq = setup()
    await up(m, mq)
    m.pub_code = 11
    e = await araises(C.CmqttError, mq.publish("t", b"x"))
    assert e.code == 11 and e.name == "NoConnection"
    assert not mq.connected()  # error 11 takes the session down
    # and the next publish is refused locally, nothing sent
    n = len(m.cmds)
    e = await araises(C.CmqttError, mq.publish("t", b"x"))
    assert e.code == 11 and len(m.cmds) == n
    at.stop()


async def test_connlost_urc_drives_state():
    m, at, mq = setup()
    states = []
    mq.on_state(lambda up_, why: states.append((up_, why)))
    await up(m, mq)
    assert states == [(True, "connected")]
    m.connected = False
    m.feed(b"\r\n+CMQTTCONNLOST: 0,1\r\n")
    assert await until(lambda: not mq.connected())
    assert "socket closed passively" in states[-1][1]
    assert not mq.nonet  # a CONNLOST is no NONET (modem.cmqtt reads both texts off at.reader.UNSOLICITED)
    await mq.connect("broker.local", 1883)
    assert mq.connected()
    m.feed(b"\r\n+CMQTTNONET\r\n")
    assert await until(lambda: not mq.connected())
    assert mq.nonet
    at.stop()


async def test_connlost_ends_the_wait_for_a_pub_result():
    # the broker went away with a QoS 1 PUB in flight: no PUBACK can come on the closed session. The module
    # answers the op's failure first (the seed thread's '+CMQTTUNSUB: 0,6' before CONNLOST) or not at all
    # (the simulator); without that answer the publish must still end with the session, not after 70 s
    import asyncio

    m, at, mq = setup()
    await up(m, mq)
    m.hold.add("CMQTTPUB")
    t = asyncio.create_task(mq.publish("fleet/1/data", b"x", 1))
    assert await until(lambda: m.owed)  # the PUB went out (OK), its result is held
    m.connected = False
    del m.owed["CMQTTPUB"]  # dropped with the session: never sent
    m.feed(b"\r\n+CMQTTCONNLOST: 0,1\r\n")
    assert await until(t.done, 1000), "the publish still waits for a result the closed session cannot give"
    e = await araises(C.CmqttError, t)
    assert e.code == 11 and e.op == "CMQTTPUB" and "socket closed passively" in str(e)
    assert not mq.connected()
    m.hold.discard("CMQTTPUB")
    await mq.connect("broker.local", 1883)  # nothing left owed: the reconnect and the next publish go through
    await mq.publish("fleet/1/data", b"y", 1)
    assert m.pubs[-1] == (b"fleet/1/data", b"y", 1)
    at.stop()


async def test_connlost_for_other_client_is_ignored():
    m, at, mq = setup()
    await up(m, mq)
    m.feed(b"\r\n+CMQTTCONNLOST: 1,2\r\n")
    m.feed(b"\r\n+CMQTTPING: 1,17\r\n")
    await mq.publish("t", b"x")  # a round trip: the URCs above were processed before its reply
    assert mq.connected()
    m.feed(b"\r\n+CMQTTPING: 0,17\r\n")
    assert await until(lambda: not mq.connected())
    at.stop()


async def test_noise_ok_before_the_data_prompt_is_an_error_not_a_publish():
    # line noise 'OK' completed by the '\r\n' in front of '>': the engine takes it as the final result and
    # never writes the payload; the module would publish an empty/stale payload and PUBACK it
    m, at, mq = setup()
    await up(m, mq)
    real = m._command
    hits = []

    def noisy(cmd):
        r = real(cmd)
        if cmd.startswith("AT+CMQTTPAYLOAD=") and not hits:
            hits.append(cmd)
            return b"OK" + r
        return r

    m._command = noisy
    e = await araises(C.CmqttError, mq.publish("fleet/1/data", b"batch-1", 1))
    assert hits and m.pubs == []  # nothing published in place of the batch
    assert e.code == 1 and "prompt" in str(e)  # at once, not a timeout after the next command went astray
    assert not [d for d in m.data if d.startswith(b"AT")]  # no command was swallowed as payload bytes
    at.stop()


async def test_a_publish_cancelled_while_its_result_is_owed_does_not_make_the_next_one_busy():
    """Shutdown/standby cancels a publish after PUB's OK, before +CMQTTPUB: 0,0: the module is still
    busy with it, so the next CMQTT command waits for that result instead of drawing error 14
    (seen at the end of the MicroPython fault soak: a 14, then a duplicate batch)."""
    import asyncio

    from core.compat import sleep_ms

    m, at, mq = setup()
    await up(m, mq)
    m.hold.add("CMQTTPUB")
    t = asyncio.create_task(mq.publish("t/a", b"1", 1))
    await until(lambda: "CMQTTPUB" in m.owed)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        pass
    assert at.owed("+CMQTT") is not None
    t2 = asyncio.create_task(mq.publish("t/b", b"2", 1))
    await sleep_ms(50)
    assert m.busy_hits == 0 and m.pubs == [(b"t/a", b"1", 1)]  # t/b waits for the owed result
    m.hold.discard("CMQTTPUB")
    m.release("CMQTTPUB", 0)
    await t2
    assert m.busy_hits == 0 and m.pubs == [(b"t/a", b"1", 1), (b"t/b", b"2", 1)]
    assert at.owed("+CMQTT") is None and at.stats["stray"] == 0
    at.stop()
