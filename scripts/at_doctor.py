#!/usr/bin/env python3
"""AT transcript doctor: read a SIM7600 modem transcript and explain every failure.

Usage:
    scripts/at_doctor.py TRANSCRIPT [--json] [--format auto|log|plain] [--check]
    scripts/at_doctor.py - < capture.txt

TRANSCRIPT is a "=== SENT@ms === / === RECV@ms ===" debug log (the forum thread's format and our firmware's
ATLog), or a plain terminal capture (AT lines are commands, the rest replies).  The report rebuilds the
conversation with timings, then lists numbered findings: what failed, the code and its meaning, the cause,
the fix and the evidence with timestamps.  Findings are kept apart by kind: host mistakes (what the user must
fix), network and module events (what happened to the device) and information.  A file is split into sessions
where its clock goes back or the host starts over.  --check exits 1 on a host mistake of severity "error", or
when the file holds no AT conversation (empty, binary, prose, a capture at the wrong baud rate); events of the
network or the module never fail it.  No output shows a password, PIN or key from the transcript.
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
    ap.add_argument("--check", action="store_true",
                    help="exit 1 on a host mistake (error) or when there is no AT conversation")
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
    if a.check and d.check_failed():
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
