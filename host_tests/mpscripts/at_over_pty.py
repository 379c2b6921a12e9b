# Runs under the MicroPython unix port: the AT engine over a real pty (SerialPath) against the
# SIM7600 simulator. Prints one "CHECK <name> <json>" line per step for host_tests/test_at_pty.py.
import asyncio
import gc
import json
import sys

from at.engine import CME, ERROR, REBOOTED, TIMEOUT, ATEngine, ATError
from core.stream import SerialPath


def out(name, v):
    print("CHECK %s %s" % (name, json.dumps(v)))


async def main(path):
    # a 1.5 KB certificate with CR/LF inside, allocated first, while the small heap is not fragmented
    cert = bytearray(1560)
    for i in range(len(cert)):
        cert[i] = 81  # 'Q'
    cert[0:33] = b"-----BEGIN CERTIFICATE-----\r\nMIIB"
    cert[-28:] = b"\r\n-----END CERTIFICATE---\r\n"
    from modem import codes

    # the engine knows no CMQTT table; a driver gives it one (modem.cmqtt does so)
    at = ATEngine(SerialPath(path), poll_ms=2, meaning=lambda pfx, code: codes.cmqtt_meaning(code))
    at.start()
    print("READY")  # the port is open: the test powers the simulated module on now
    boot = []
    at.on_urc("SMS DONE", lambda ln, b: boot.append(ln))
    out("boot", await at.wait_urc("PB DONE", 10000))
    out("boot_urcs", boot)
    r = await at.cmd("ATI")
    out("ati", {"echo": r.echo, "lines": r.lines})
    await at.cmd("ATE0")
    r = await at.cmd("AT")
    out("echo_off", r.echo)
    if hasattr(gc, "mem_free"):
        out("free_before_cert", gc.mem_free())
    await at.cmd('AT+CCERTDOWN="t.pem",%d' % len(cert), data=cert, timeout_ms=5000)
    out("certlist", (await at.cmd("AT+CCERTLIST")).lines)
    for _ in range(200):  # CMQTTSTART needs the network: wait for registration, as the firmware does
        v = (await at.cmd("AT+CGREG?")).value("+CGREG:")
        if v and v.split(",")[1] in ("1", "5"):
            break
        await asyncio.sleep_ms(20) if hasattr(asyncio, "sleep_ms") else await asyncio.sleep(0.02)
    r = await at.cmd("AT+CMQTTSTART", result="+CMQTTSTART:", timeout_ms=5000, result_timeout_ms=5000)
    out("start_result", r.result)
    try:
        await at.cmd("AT+CMQTTSTART", result="+CMQTTSTART:", timeout_ms=5000)
        out("start_again", None)
    except ATError as e:
        if e.kind != ERROR:
            raise
        out("start_again", [e.code, e.meaning])
    try:
        await at.cmd("AT+CMQTTTOPIC=0,5", data=b"a/b/c")
        out("topic_unacquired", None)
    except ATError as e:
        if e.kind != ERROR:
            raise
        out("topic_unacquired", [e.code, e.meaning])
    try:
        await at.cmd('AT+CPIN="1234"')
        out("cme", None)
    except ATError as e:
        if e.kind != CME:
            raise
        out("cme", [e.code, e.meaning])
    rx = []
    at.on_urc("+CMQTTRXTOPIC:", None, body_len=lambda ln: int(ln.split(",")[1]))
    at.on_urc("+CMQTTRXPAYLOAD:", lambda ln, b: rx.append(str(b, "utf-8")), body_len=lambda ln: int(ln.split(",")[1]))
    seen = []
    at.on_urc("+CMQTTCONNLOST:", lambda ln, b: seen.append(ln))
    r = await at.cmd("AT+XGARBAGE")
    out("garbage", {"lines": r.lines, "urcs": seen, "rx": rx, "stray": at.stats["stray"]})
    try:
        await at.cmd("AT+XSILENT", timeout_ms=300)
        out("timeout", None)
    except ATError as e:
        if e.kind != TIMEOUT:
            raise
        out("timeout", str(e))
    r = await at.cmd("AT+CSQ", timeout_ms=3000)
    out("after_timeout", r.lines)
    try:
        await at.cmd("AT+XREBOOT", timeout_ms=3000)
        out("reboot", None)
    except ATError as e:
        if e.kind != REBOOTED:
            raise
        out("reboot", str(e))
    await at.wait_urc("PB DONE", 10000)
    r = await at.cmd("ATI")
    out("after_reboot", {"echo": r.echo, "n": len(r.lines)})
    gc.collect()
    try:
        import micropython

        out("mem", {"peak": micropython.mem_peak(), "alloc": gc.mem_alloc()})
    except (ImportError, AttributeError):
        pass
    at.stop()


def _path():
    argv = getattr(sys, "argv", None)
    if argv and len(argv) > 1:
        return argv[1]
    import os

    return os.getenv("MODEM")  # when imported precompiled (micropython -c "import at_over_pty")


asyncio.run(main(_path()))
