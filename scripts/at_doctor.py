#!/usr/bin/env python3
"""AT transcript doctor: read a SIM7600 modem transcript and explain every failure.

Usage:
    scripts/at_doctor.py TRANSCRIPT [--json] [--format auto|log|plain] [--check]
    scripts/at_doctor.py - < capture.txt

TRANSCRIPT is a "=== SENT@ms === / === RECV@ms ===" debug log (the forum thread's format and our firmware's
ATLog), or a plain terminal capture (AT lines are commands, the rest replies).  The report rebuilds the
conversation with timings, then lists numbered findings: what failed, the code and its meaning, the cause,
the fix and the evidence with timestamps.  --check exits 1 when a finding of severity "error" is present.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from atdoctor import diagnose, render_text  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("transcript", help="transcript file, or - for stdin")
    ap.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    ap.add_argument("--format", default="auto", choices=("auto", "log", "plain"))
    ap.add_argument("--check", action="store_true", help="exit 1 if an error-level finding is present")
    a = ap.parse_args(argv)
    try:
        if a.transcript == "-":
            text = sys.stdin.buffer.read()
        else:
            with open(a.transcript, "rb") as f:
                text = f.read()
    except OSError as e:
        print("at_doctor: cannot read %s: %s" % (a.transcript, e), file=sys.stderr)
        return 2
    d = diagnose(text, source=a.transcript, fmt=a.format)
    if a.json:
        print(json.dumps(d.to_dict(), indent=2))
    else:
        sys.stdout.write(render_text(d))
    if a.check and any(f.severity == "error" for f in d.findings):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
