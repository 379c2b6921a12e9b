# Views of a validated config for logs and tools (telelogger/config.py keeps them importable as
# config.redacted, config.get, config.warnings, config.SECRET_MASK): a copy safe to log, a dotted
# lookup, the warnings about what is allowed but probably not meant. Imported per use.

SECRET_MASK = "***"


def redacted(cfg):
    """Copy of cfg safe to log: every non-empty secret replaced by "***"."""
    out = {}
    for k in cfg:
        v = cfg[k]
        if k == "secrets" and isinstance(v, dict):
            out[k] = _mask(v)
        elif isinstance(v, dict):
            out[k] = redacted(v)
        else:
            out[k] = v
    return out


def _mask(d):
    out = {}
    for k in d:
        v = d[k]
        if isinstance(v, dict):
            out[k] = _mask(v)
        else:
            out[k] = SECRET_MASK if v else v
    return out


def get(cfg, dotted):
    """cfg value at a dotted key ("queue.max_bytes")."""
    v = cfg
    for part in dotted.split("."):
        v = v[part]
    return v


def warnings(cfg):
    """What a validated config allows but is probably not meant: one sentence each, naming the key."""
    b = cfg.get("broker") or {}
    out = []
    port, tls = b.get("port"), b.get("tls")
    if tls and port == 1883:
        out.append("broker.port 1883 with broker.tls true: 1883 is MQTT's plain port (TLS is usually 8883)")
    if not tls and port == 8883:
        out.append("broker.port 8883 with broker.tls false: 8883 is MQTT over TLS (plain is usually 1883)")
    if tls and b.get("tls_verify") is False:
        out.append("broker.tls_verify false: the broker is not verified (anyone on the path can read and change "
                   "the traffic); the device warns at every boot")
    if not tls:
        out.append("broker.tls false: the MQTT password and the data cross the network in the clear")
    return out
