# Co-processor identification (ATI -> devType -> ONE+ model): a boot-time path, imported by
# Obd.device_type() for the call and dropped afterwards on the device.

# Co-processor "ATI" version (e.g. "OBD2USART V1.4" -> devType 14) to ONE+ model
# (Freematics telelogger dashboard.js).
COPROC_MODELS = {11: "A", 16: "A", 12: "B", 13: "B", 14: "B", 15: "H"}


def parse_devtype(text):
    """Co-processor type from the ATI text: "OBD2USART V1.4" -> 14 (X.Y after the space
    following "OBD"); 0 when the text is not a Freematics co-processor's."""
    i = text.find("OBD")
    if i < 0:
        return 0
    i = text.find(" ", i)
    if i < 0:
        return 0
    n = len(text)
    while i < n and not ("0" <= text[i] <= "9"):
        i += 1
    x = 0
    while i < n and "0" <= text[i] <= "9":
        x = x * 10 + ord(text[i]) - 48
        i += 1
    if i + 1 >= n or text[i] != "." or not ("0" <= text[i + 1] <= "9"):
        return 0
    return x * 10 + ord(text[i + 1]) - 48


async def device_type(obd, tries=3):
    """ATI on the co-processor, up to `tries` times (official getDeviceType: 3; a miss on
    devType 13 would open the modem on the wrong pins): (devtype, model, text). An adapter
    that answers but is not a Freematics one gives (0, None, its text); one that never answers
    raises the last error."""
    from obdii.elm import ElmError

    last = None
    for _ in range(tries):
        try:
            lines = await obd.link.query("ATI", obd.short_ms)
        except ElmError as e:
            last = e
            continue
        for ln in lines:
            t = parse_devtype(ln)
            if t:
                return t, COPROC_MODELS.get(t), ln
        last = "\r".join(lines)
    if isinstance(last, str):
        return 0, None, last
    raise last
