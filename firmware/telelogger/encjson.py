# The "json" batch format (telelogger/FORMAT.md), written by hand so numbers are exact decimals
# on single-precision ports too. Imported by record.encode_batch for the first JSON batch, which
# hands it the record module itself (its varints, times and version): imported here, it would be a
# circle. Also the reading of a record's samples (_read_sample, get_svarint: the device reads samples
# back only for a JSON batch; telelogger.record forwards the two names here for decode.py, encode.py
# and tests), which finds telelogger.record in sys.modules for the same reason: it is loaded whenever
# they run.
import json
import sys

from core.compat import const
from telelogger.tasks import text, unload

# the error texts (telelogger/texts.py, looked up when one is raised: tasks.text), by number
_T_SAMPLE_CUT = const(11)
_T_SAMPLE_DP = const(12)

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


def get_svarint(b, i, end=None):
    """The zigzag varint (FORMAT.md) at b[i] -> (value, next index)."""
    z, i = sys.modules["telelogger.record"].get_uvarint(b, i, end)
    return (z >> 1) if not (z & 1) else -((z + 1) >> 1), i


def _read_sample(b, i, end, fn=True):
    """-> (key, dp, multi, [scaled ints], next index). fn(key): the decimals of a sample that does
    not carry its own (True: telelogger.record.dp_of); fn None: dp stays None then (only skipping)."""
    R = sys.modules["telelogger.record"]
    if fn is True:
        fn = R.dp_of
    h, i = R.get_uvarint(b, i, end)
    key = h >> 1
    n = 1
    multi = False
    dp = None
    if h & 1:
        if i >= end:
            raise R.FormatError(text(_T_SAMPLE_CUT) % key)
        e = b[i]
        i += 1
        n = (e & 3) + 1
        multi = bool(e & 4)
        if e & 8:
            dp = e >> 4
            if dp > 9:
                raise R.FormatError(text(_T_SAMPLE_DP) % (key, dp))
    if dp is None and fn:
        dp = fn(key) or 0
    vals = []
    for _ in range(n):
        v, i = get_svarint(b, i, end)
        vals.append(v)
    return key, dp, multi, vals, i


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
        key, dp, multi, vals, i = _read_sample(b, i, end)
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
