# The sender side of remote commands for tests on both runtimes (FORMAT.md "Remote commands"):
# built on the firmware's envelope (telelogger.cmdseal). The independent oracles are
# scripts/cmdsign.py and the openssl signer in host_tests/test_command_signer.py.
import json
from binascii import hexlify

from telelogger.cmdseal import REP, REQ, hmac256, pads, prefix, seal, split, verify


def hmac_sha256(key, msg):
    return hmac256(pads(key), msg)


def hmac_hex(key, msg):
    return hexlify(hmac_sha256(key, msg)).decode()


def sign(key, body, device_id):
    """body dict (cmd, args, n, ts and/or chal, nonce) -> request payload for `device_id`."""
    b = json.dumps(body).encode()
    if len(b) != len(b.decode()):  # MicroPython's json.dumps writes UTF-8: the body must be ASCII
        raise ValueError("a request body is ASCII: write non-ASCII characters as \\u escapes")
    return seal(pads(key), prefix(device_id, REQ), b)


def seal_raw(key, body_bytes, device_id, direction=REQ):
    return seal(pads(key), prefix(device_id, direction), body_bytes)


def verify_reply(key, payload, device_id):
    """The reply dict of an authentic reply from `device_id`; raises ValueError (CommandError)."""
    body, mac = split(payload, None)
    verify(pads(key), prefix(device_id, REP), body, mac)
    return json.loads(body)
