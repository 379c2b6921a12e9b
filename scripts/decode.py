#!/usr/bin/env python3
"""Decode telelogger payloads (compact or JSON batches) into JSON lines, one per record.

Inputs (any mix):
  decode.py FILE...          a file holding one payload (binary compact or JSON), JSON lines,
                             hex lines, or a mosquitto_sub capture
  decode.py -                stdin (the same)
  decode.py --hex F70144...  a payload given as hex
  mosquitto_sub -v -F '%t %x' -t 'freematics/+/data' | decode.py -
                             capture lines "<topic> <payload>", payload as hex (%x) or JSON text
                             (plain `mosquitto_sub -v` works for JSON payloads; binary compact
                             payloads need -F '%t %x' since they may contain newlines)

Each output line: {"dev": ..., "seq": ..., "ts": ..., ["mono", "boot"], <sample name>: value ...}
plus "topic" when the input had one, "time" (ISO-8601 UTC) with --iso, and "units" ({name: unit}
for the samples of that record, from telelogger/keys.py) with --units.
Exit status 1 if any payload could not be decoded or the input held none (each failure is
reported on stderr, naming the input, the line and what is wrong).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "firmware"))

from telelogger.decode import BATCH_MAGIC, FormatError, decode_batch  # noqa: E402

_HEX = set(b"0123456789abcdefABCDEF")


def _is_hex(b):
    return len(b) >= 2 and len(b) % 2 == 0 and all(c in _HEX for c in b)


_META = ("seq", "ts", "mono", "boot")


def _units():
    from telelogger import keys

    return dict((name, unit) for name, _dp, unit in keys.KEYS.values())


def records(payload, topic=None, iso=False, units=None):
    """units: None, or {name: unit} (see _units) to add a "units" member per record."""
    d = decode_batch(payload)
    for r in d["recs"]:
        out = {"dev": d.get("dev")}
        if topic is not None:
            out["topic"] = topic
        out.update(r)
        if iso and isinstance(r.get("ts"), int):
            t = r["ts"]
            out["time"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000)) + ".%03dZ" % (t % 1000)
        if units is not None:
            out["units"] = dict((k, units.get(k, "")) for k in r if k not in _META)
        yield out


class InputError(ValueError):
    pass


def _payload_of(text):
    """One token of a text input -> payload bytes (hex or JSON text); InputError says what it is not."""
    text = text.strip()
    if not text:
        raise InputError("no payload after the topic")
    if _is_hex(text):
        return bytes.fromhex(text.decode())
    if all(c in _HEX for c in text):
        raise InputError("odd number of hex digits (%d): a byte is missing or one too many" % len(text))
    if text[:1] != b"{":
        raise InputError("neither hex nor JSON (starts with %r)" % text[:12].decode(errors="replace"))
    return text


def split_input(data):
    """Raw input bytes -> [(topic or None, payload bytes, where)]."""
    if not data.strip():
        return []
    if data[0] == BATCH_MAGIC:
        return [(None, data, "binary payload")]
    stripped = data.strip()
    if stripped[:1] == b"{":
        try:
            json.loads(stripped)
            return [(None, stripped, "JSON payload")]
        except ValueError:
            pass  # JSON lines
    items = []
    for n, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        where = "line %d" % n
        try:
            if line[:1] == b"{" or all(c in _HEX for c in line):
                items.append((None, _payload_of(line), where))
                continue
            topic, _, rest = line.partition(b" ")
            items.append((topic.decode(errors="replace"), _payload_of(rest), where))
        except InputError as e:
            items.append((None, e, where))
    return items


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*", help="files, or - for stdin (default: stdin)")
    ap.add_argument("--hex", action="append", default=[], help="a payload as hex (repeatable)")
    ap.add_argument("--iso", action="store_true", help="add an ISO-8601 UTC 'time' field")
    ap.add_argument("--units", action="store_true", help="add the unit of each sample ('units': {name: unit})")
    a = ap.parse_args(argv)
    jobs = []
    for h in a.hex:
        try:
            jobs.append((None, _payload_of(h.encode()), "--hex"))
        except InputError as e:
            print("decode: --hex %s: %s" % (h[:20], e), file=sys.stderr)
            return 1
    inputs = a.inputs or ([] if a.hex else ["-"])
    for name in inputs:
        if name == "-":
            data = sys.stdin.buffer.read()
            label = "stdin"
        else:
            try:
                with open(name, "rb") as f:
                    data = f.read()
            except OSError as e:
                print("decode: %s: %s" % (name, e.strerror), file=sys.stderr)
                return 1
            label = name
        items = split_input(data)
        if not items:
            print("decode: %s: empty input: no payload to decode" % label, file=sys.stderr)
            return 1
        for topic, payload, where in items:
            jobs.append((topic, payload, "%s %s" % (label, where)))
    units = _units() if a.units else None
    bad = 0
    for topic, payload, where in jobs:
        try:
            if isinstance(payload, InputError):
                raise payload
            for r in records(payload, topic, a.iso, units):
                sys.stdout.write(json.dumps(r) + "\n")
        except (FormatError, ValueError, UnicodeError) as e:
            bad += 1
            print("decode: %s: %s" % (where, e), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
