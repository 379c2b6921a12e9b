# NMEA helpers for tests and the replay peer (not on the device): checksum and sentence framing.


def checksum(body):
    """XOR checksum of the text between '$' and '*' (str or bytes) -> int."""
    x = 0
    if isinstance(body, str):
        body = body.encode()
    for c in body:
        x ^= c
    return x


def sentence(body):
    """'GPGGA,...' -> b'$GPGGA,...*hh\\r\\n'."""
    return ("$%s*%02X\r\n" % (body, checksum(body))).encode()
