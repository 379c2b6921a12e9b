# The sealed envelope of remote commands and their replies (telelogger/FORMAT.md "Remote
# commands"): HMAC-SHA256 bound to the device id and the direction. Resident with commands.py:
# an unauthenticated message costs these few functions and one HMAC, nothing else.
#
# payload = BODY without its final "}" + ',"mac":"' + MAC + '"}' where MAC is the lowercase hex
# HMAC-SHA256(key, "fm-cmd-v2\n" + device_id + "\n" + ("req" | "rep") + "\n" + BODY).
from binascii import hexlify, unhexlify
from hashlib import sha256

from core.compat import const

DOMAIN = b"fm-cmd-v2\n"
REQ = b"req"
REP = b"rep"
_TAIL = const(b',"mac":"')  # a payload ends with _TAIL + 64 lowercase hex digits + '"}'
_TAIL_LEN = const(74)
_MAX_PAYLOAD = const(1024)  # bytes of a request payload, mac included


class CommandError(ValueError):
    """A refused command or reply; str(e) says why (it is the error reply's text)."""


def pads(key):
    """(inner, outer) HMAC pads of `key` (str: its UTF-8 bytes), computed once per key."""
    if isinstance(key, str):
        key = key.encode()
    if len(key) > 64:
        key = sha256(key).digest()
    i = bytearray(64)
    o = bytearray(64)
    for j in range(64):
        c = key[j] if j < len(key) else 0
        i[j] = c ^ 0x36
        o[j] = c ^ 0x5C
    return bytes(i), bytes(o)


def hmac256(pad, *parts):
    """HMAC-SHA256 (RFC 2104) of the concatenated parts, with pads(key)."""
    h = sha256(pad[0])
    for p in parts:
        h.update(p)
    return sha256(pad[1] + h.digest()).digest()


def equal_ct(a, b):
    """Constant-time comparison of two byte strings."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def prefix(device_id, direction):
    """What the MAC covers before the body: domain, device id, direction (REQ or REP)."""
    if not isinstance(device_id, str) or not device_id or "\n" in device_id:
        raise ValueError("device_id: expected a non-empty string without newlines, got %r" % (device_id,))
    return DOMAIN + device_id.encode() + b"\n" + direction + b"\n"


def seal(pad, pre, body):
    """body: JSON object bytes ending in '}' -> payload with the mac as its last member."""
    if body[-1:] != b"}":
        raise ValueError("a body is a JSON object text ending in }")
    return body[:-1] + _TAIL + hexlify(hmac256(pad, pre, body)) + b'"}'


def split(payload, cap=_MAX_PAYLOAD):
    """-> (signed body, mac hex) of a payload shaped like a sealed one; raises CommandError
    saying what is wrong. Length checks and slicing only: nothing is parsed."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    if cap is not None and n > cap:
        raise CommandError("payload of %d bytes: at most %d" % (n, cap))
    payload = bytes(payload)
    if n < _TAIL_LEN + 2 or payload[n - _TAIL_LEN : n - 66] != _TAIL or payload[n - 2 :] != b'"}':
        raise CommandError('no mac: a payload ends with ,"mac":"<64 hex digits>"} (FORMAT.md)')
    mac = payload[n - 66 : n - 2]
    try:
        unhexlify(mac)
    except ValueError:
        raise CommandError("malformed mac: expected 64 hex digits")
    return payload[: n - _TAIL_LEN] + b"}", mac


def verify(pad, pre, body, mac):
    if not equal_ct(hexlify(hmac256(pad, pre, body)), mac):
        raise CommandError("bad mac")  # wrong key, another device, the other direction, altered bytes
