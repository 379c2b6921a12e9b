"""Property tests for the AT framing and the engine's line handling (CPython, hypothesis).

Any byte stream, split at any points, gives the same lines as fed whole; nothing but the engine's
own errors ever escapes; a length-prefixed body is delivered intact whatever it contains.
"""
import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from at.engine import ATEngine, ATError
from at.lines import Framer
from fakestream import BufferStream


def _frame(chunks, body_prefix=None):
    out = []

    def on_line(s):
        out.append(("L", s))
        if body_prefix and s.startswith(body_prefix):
            n = int(s.split(",")[-1])
            fr.expect_body(n, lambda b: out.append(("B", b)))

    fr = Framer(on_line)
    for c in chunks:
        buf = bytearray(c)
        fr.feed(buf, len(buf))
    return out


def _split(data, cuts):
    cuts = sorted(set(c % (len(data) + 1) for c in cuts))
    parts, last = [], 0
    for c in cuts:
        parts.append(data[last:c])
        last = c
    parts.append(data[last:])
    return parts


line_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=0, max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_gives_the_same_lines(data, cuts):
    whole = _frame([data])
    assert _frame(_split(data, cuts)) == whole
    assert _frame([data[i : i + 1] for i in range(len(data))]) == whole


@settings(max_examples=200, deadline=None)
@given(st.lists(line_text, max_size=10), st.sampled_from([b"\r\n", b"\r", b"\n", b"\r\r\n"]),
       st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
def test_lines_survive_any_line_ending(lines, eol, cuts):
    data = b"".join(ln.encode() + eol for ln in lines)
    got = [s for k, s in _frame(_split(data, cuts)) if k == "L"]
    assert got == [ln.strip() for ln in lines if ln.strip()]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=1500), st.lists(st.integers(min_value=0, max_value=10_000), max_size=10))
def test_body_delivered_intact_whatever_it_contains(body, cuts):
    data = b"\r\n+CMQTTRXPAYLOAD: 0,%d\r\n" % len(body) + body + b"\r\n+CMQTTRXEND: 0\r\n"
    got = _frame(_split(data, cuts), body_prefix="+CMQTTRXPAYLOAD:")
    assert got[0] == ("L", "+CMQTTRXPAYLOAD: 0,%d" % len(body))
    if body:
        assert got[1] == ("B", body)
    assert got[-1] == ("L", "+CMQTTRXEND: 0")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_engine_never_wedges_on_noise(noise, cuts):
    """Noise before and inside a reply: the command still completes or fails with an ATError, and
    the next command always works."""

    async def main():
        replies = {b"AT+CSQ\r": b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", b"AT+CMEE?\r": b"\r\n+CMEE: 2\r\n\r\nOK\r\n",
                   b"AT\r": b"\r\nOK\r\n"}
        s = BufferStream(on_write=lambda b: s.feed(replies.get(bytes(b), b"")))  # the modem answers what it is sent
        at = ATEngine(s, poll_ms=1)
        at.start()
        for part in _split(noise, cuts):
            s.feed(part)
        await asyncio.sleep(0.002)
        try:
            await at.cmd("AT+CSQ", timeout_ms=200)
        except ATError:
            pass
        r = await at.cmd("AT", timeout_ms=500)  # after a failure the engine resyncs (AT+CMEE?) first
        assert r.final == "OK"
        at.stop()

    asyncio.run(main())
