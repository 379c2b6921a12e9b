# The "json" batch format (telelogger/FORMAT.md), written by hand so numbers are exact decimals
# on single-precision ports too. Imported by record.encode_batch for the first JSON batch, which
# hands it the record module itself (its reader and version): imported here, it would be a circle.
import json

from telelogger.tasks import unload

_names = None  # key -> JSON name, read once from keys.py (which is unloaded again)


def name_of(key):
    global _names
    if _names is None:
        from telelogger import keys

        d = {}
        for k in keys.KEYS:
            d[k] = keys.KEYS[k][0]
        d[None] = keys.UNKNOWN_PREFIX
        _names = d
        del keys
        unload("keys")
    n = _names.get(key)
    return n if n is not None else "%s%x" % (_names[None], key)


def fmt_scaled(v, dp):
    """Scaled integer -> exact decimal text (no float round trip)."""
    if dp == 0:
        return str(v)
    a = -v if v < 0 else v
    p = 10 ** dp
    f = str(a % p)
    return "%s%d.%s%s" % ("-" if v < 0 else "", a // p, "0" * (dp - len(f)), f)


def _json_samples(parts, b, i, end, R):
    while i < end:
        key, dp, multi, vals, i = R._read_sample(b, i, end)
        parts.append(',"%s":' % name_of(key))
        if multi:
            parts.append("[" + ",".join([fmt_scaled(v, dp) for v in vals]) + "]")
        else:
            parts.append(fmt_scaled(vals[0], dp))


def encode_json(device_id, entries, utc_offset_ms, boot, R):
    """The JSON batch (record.encode_batch's arguments); R: the telelogger.record module."""
    parts = ['{"v":%d,"dev":%s,"seq0":%d,"recs":[' % (R.BATCH_VERSION, json.dumps(device_id), entries[0][0] if entries else 0)]
    first = True
    for seq, rec, uts, rb, mono, i in R._times(entries, utc_offset_ms, boot):
        parts.append('{"seq":%d' % seq if first else ',{"seq":%d' % seq)
        first = False
        if uts is not None:
            parts.append(',"ts":%d' % uts)
        else:
            parts.append(',"ts":null,"mono":%d,"boot":%d' % (mono, rb))
        _json_samples(parts, rec, i, len(rec), R)
        parts.append("}")
    parts.append("]}")
    return "".join(parts).encode()
