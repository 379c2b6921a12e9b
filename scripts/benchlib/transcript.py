"""Times of bring-up events in a SENT/RECV transcript (the seed thread's log format, which the
SIM7600 simulator and the firmware's ATLog also write)."""
import re

_BLOCK = re.compile(r"^=== (SENT|RECV)@(\d+) ===\n(.*?)\n?==================$", re.S | re.M)


def blocks(text):
    """-> [(kind, ms, body)] in order."""
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in _BLOCK.finditer(text)]


def bringup_times(text):
    """{'first_ms', 'cmqttstart_ms', 'connected_ms', 'first_publish_ms'} (None when absent).

    connected: the RECV of '+CMQTTCONNECT: 0,0'; a log without it (the seed's firmware never
    waited for the result) uses the first command sent after CONNECT's OK, the moment that
    firmware believed it was connected. first_publish: the RECV of '+CMQTTPUB: 0,0'."""
    bl = blocks(text)
    out = {"first_ms": bl[0][1] if bl else None, "cmqttstart_ms": None, "connected_ms": None,
           "first_publish_ms": None}
    connect_sent = None
    connect_ok = False
    for kind, ms, body in bl:
        if kind == "SENT" and out["cmqttstart_ms"] is None and "AT+CMQTTSTART" in body:
            out["cmqttstart_ms"] = ms
        if kind == "SENT" and "AT+CMQTTCONNECT=" in body:
            connect_sent = ms
        if kind == "RECV" and connect_sent is not None and out["connected_ms"] is None:
            if "+CMQTTCONNECT: 0,0" in body:
                out["connected_ms"] = ms
            elif "OK" in body.split():
                connect_ok = True
        elif kind == "SENT" and connect_ok and out["connected_ms"] is None and "AT+CMQTTCONNECT=" not in body:
            out["connected_ms"] = ms
        if kind == "RECV" and out["first_publish_ms"] is None and "+CMQTTPUB: 0,0" in body:
            out["first_publish_ms"] = ms
    return out
