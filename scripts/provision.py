#!/usr/bin/env python3
"""Upload MQTTS certificates to a SIM7600 with the firmware's own driver (modem/tls.py).

  python scripts/provision.py --port /dev/ttyUSB2 --dir ~/Downloads/aws-thing/      # AWS IoT download
  python scripts/provision.py --port /dev/ttyUSB2 --ca AmazonRootCA1.pem --cert X-certificate.pem.crt --key X-private.pem.key

--port is any serial path to the module's AT port (USB AT port, or a pty of the simulator).
From --dir it picks `AmazonRootCA1.pem` (or any *CA*.pem), `*-certificate.pem.crt` and
`*-private.pem.key` (AWS IoT's names; `*-public.pem.key` is not needed). Files are stored on the
module under content-hash names (ca-<h8>.pem ...; see firmware/modem/tls.py), so running it again
uploads nothing, and older versions of the same role are deleted. Prints progress and a report with
the names to put in the config; exit code 0 on success, 1 with a clear message when the upload
fails, 2 for a user mistake (a port that is not a serial port, a file or folder that is not there),
said in one line with the fix.
"""
import argparse
import asyncio
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "firmware"))
sys.path.append(os.path.join(ROOT, "scripts"))

from at.engine import ATEngine, ATError  # noqa: E402
from core.stream import SerialPath  # noqa: E402
from modem.sim7600 import ModemError, Sim7600  # noqa: E402
from modem.tls import Tls, TlsSetupError, check_pem  # noqa: E402
from portcheck import port_problem  # noqa: E402


class ProvisionError(Exception):
    pass


class UsageError(ProvisionError):
    """A mistake in the command line (exit status 2)."""


def find_aws_files(d):
    """-> {'ca': path, 'cert': path, 'key': path} from an AWS IoT download folder."""
    if not os.path.isdir(d):
        raise UsageError("--dir %s: %s" % (d, "not a folder" if os.path.exists(d) else "no such folder"))
    def one(patterns, what):
        hits = []
        for p in patterns:
            hits += glob.glob(os.path.join(d, p))
        hits = sorted(set(hits))
        if not hits:
            raise ProvisionError("no %s in %s (looked for %s)" % (what, d, ", ".join(patterns)))
        if len(hits) > 1:
            raise ProvisionError("several %s files in %s: %s; pass --%s explicitly" % (what, d, ", ".join(os.path.basename(h) for h in hits), what))
        return hits[0]

    return {
        "ca": one(["AmazonRootCA1.pem"], "ca") if os.path.exists(os.path.join(d, "AmazonRootCA1.pem")) else one(["*CA*.pem", "*ca*.pem"], "ca"),
        "cert": one(["*-certificate.pem.crt", "*.cert.pem"], "cert"),
        "key": one(["*-private.pem.key", "*.private.key"], "key"),
    }


def load(paths):
    out = {}
    for role, p in paths.items():
        if p is None:
            continue
        with open(p, "rb") as f:
            data = f.read()
        try:
            check_pem(role, data)
        except TlsSetupError as e:
            raise ProvisionError("%s (%s)" % (e, p))
        out[role] = data
    return out


async def provision(stream, files, out=print, timeout_ms=30000):
    """Upload `files` ({role: bytes}) over `stream`; returns (names, uploaded, listing)."""
    at = ATEngine(stream)
    at.start()
    try:
        modem = Sim7600(at, config={"boot_timeout_ms": timeout_ms, "poll_ms": 200})
        out("waiting for the modem...")
        try:
            await modem.wait_ready()
        except ModemError:
            raise ProvisionError("no answer to AT within %d s on this port: is it the modem's AT port (a USB SIM7600 "
                                 "has several; the AT port is usually /dev/ttyUSB2) and is the modem powered?" % (timeout_ms // 1000))
        await at.cmd("ATE0", timeout_ms=2000)
        await modem.identify()
        out("modem %s, firmware %s" % (modem.model, modem.revision))
        if not modem.ssl_supported():
            out("WARNING: this firmware cannot do MQTT over SSL; certificates are uploaded anyway")
        tls = Tls(at, modem)
        names = await tls.provision(progress=out, **files)
        listing = await tls.list()
        return names, tls.uploaded, listing
    finally:
        at.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", required=True, help="serial path of the SIM7600 AT port (or simulator pty)")
    ap.add_argument("--dir", help="folder with the AWS IoT files")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--timeout", type=int, default=30, help="seconds to wait for the modem to answer AT")
    a = ap.parse_args(argv)
    try:
        problem = port_problem(a.port, "--port")
        if problem:
            raise UsageError(problem)
        paths = find_aws_files(a.dir) if a.dir else {}
        for role in ("ca", "cert", "key"):
            if getattr(a, role):
                paths[role] = getattr(a, role)
        if not paths:
            raise UsageError("nothing to upload: give --dir or --ca/--cert/--key")
        for role, p in sorted(paths.items()):
            if not os.path.isfile(p):
                raise UsageError("--%s %s: %s" % (role, p, "not a file" if os.path.exists(p) else "no such file"))
        for role, p in sorted(paths.items()):
            print("%-4s <- %s (%d bytes)" % (role, p, os.path.getsize(p)))
        files = load(paths)
        names, uploaded, listing = asyncio.run(provision(SerialPath(a.port), files, timeout_ms=a.timeout * 1000))
    except UsageError as e:
        print("provision: %s" % e)
        return 2
    except (ProvisionError, TlsSetupError, ModemError, ATError, OSError) as e:
        print("provisioning FAILED: %s" % e)
        return 1
    except Exception as e:  # termios.error and the like: one line, never a traceback
        print("provisioning FAILED: %s: %s" % (type(e).__name__, e))
        return 1
    print("")
    print("provisioned: %d uploaded, %d already present" % (len(uploaded), len(names) - len(uploaded)))
    for role in ("ca", "cert", "key"):
        if role in names:
            print("  %-4s %s%s" % (role, names[role], "  (uploaded)" if names[role] in uploaded else ""))
    print("module now holds: %s" % ", ".join(listing))
    print("the firmware computes the same names from config certs.* and skips the upload")
    return 0


if __name__ == "__main__":
    sys.exit(main())
