# The telelogger's codec as tools and tests import it (byte-level layout: telelogger/FORMAT.md):
# records and batches, "compact" or "json". The device imports telelogger/record.py alone (the
# loop's default codec); the names here are record.py's, plus the decoder and the official text
# format, which are for tools and tests: telelogger/decode.py, which the device never imports
# (encode.decode_batch, .decode_record, .record_samples, .official_text, .official_value and
# .fmt_scaled still work: they are looked up there on first use).
from telelogger.record import (_KIND_MONO, _KIND_MONO_BOOT, _KIND_UTC, BATCH_MAGIC, BATCH_VERSION,  # noqa: F401
                               FormatError,
                               _read_sample, _record_head, _times, dp_of, encode_batch, encode_record,
                               get_svarint, get_uvarint, put_svarint, put_uvarint, scale)

_DECODE_NAMES = ("decode_batch", "decode_record", "record_samples", "official_text", "official_value", "fmt_scaled")


def __getattr__(name):
    """Tool-side names, kept importable from here: telelogger/decode.py (never on the device)."""
    if name in _DECODE_NAMES:
        from telelogger import decode

        return getattr(decode, name)
    raise AttributeError(name)
