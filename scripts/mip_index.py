#!/usr/bin/env python3
"""A local `mip` package index, so `make deploy` (which runs `mpremote mip install umqtt.simple` for the
WiFi transport) can be exercised without the internet, and a fleet can install from its own mirror.

The layout is the one mpremote's mip reads (micropython.org/pi/v2):
  <index>/package/<mpy_version|py>/<name>/latest.json   {"hashes": [[target_path, short_sha256]], "deps": [], "version": v}
  <index>/file/<short[:2]>/<short>                       the file's bytes

    python scripts/mip_index.py fetch            # PyPI's micropython-umqtt.simple sdist -> .venv/mip-cache (sha256 checked)
    python scripts/mip_index.py build OUT        # an index in OUT with umqtt.simple from the cache
    python scripts/mip_index.py serve OUT --port 8000

The tests (host_tests/test_build_deploy.py) build and serve an index on 127.0.0.1 and deploy to the host
MicroPython standing in for a board. The package's code is fetched, never kept in this repository.
"""
import argparse
import hashlib
import http.server
import io
import json
import os
import sys
import tarfile
import threading
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("MIP_CACHE") or os.path.join(ROOT, ".venv", "mip-cache")
# micropython-lib's umqtt.simple as uploaded to PyPI (an sdist holding umqtt/simple.py)
PYPI_NAME = "micropython-umqtt.simple"
PACKAGE = "umqtt.simple"
SHORT = 8  # hex digits of sha256 used as the file name (as micropython-lib's index does)


def fetch(cache=CACHE, name=PYPI_NAME, timeout=60):
    """Download the newest sdist of `name` from PyPI (digest checked) and keep its .py files under
    cache/<PACKAGE>/. Returns {target_path: path on disk}. Already fetched: nothing is downloaded."""
    out = os.path.join(cache, PACKAGE)
    have = _files(out)
    if have:
        return have
    meta = json.load(urllib.request.urlopen("https://pypi.org/pypi/%s/json" % name, timeout=timeout))
    sdists = [u for u in meta["urls"] if u["packagetype"] == "sdist"]
    if not sdists:
        raise SystemExit("PyPI has no sdist of %s" % name)
    u = sdists[0]
    data = urllib.request.urlopen(u["url"], timeout=timeout).read()
    if hashlib.sha256(data).hexdigest() != u["digests"]["sha256"]:
        raise SystemExit("%s: sha256 mismatch, download refused" % u["filename"])
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            parts = m.name.split("/", 1)  # drop the "<name>-<version>/" top folder
            if m.isfile() and len(parts) == 2 and parts[1].endswith(".py") and parts[1] != "setup.py":
                dest = os.path.join(out, parts[1])
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(t.extractfile(m).read())
    with open(os.path.join(out, "VERSION"), "w") as f:
        f.write(meta["info"]["version"])
    return _files(out)


def _files(folder):
    got = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            if n.endswith(".py"):
                p = os.path.join(dirpath, n)
                got[os.path.relpath(p, folder).replace(os.sep, "/")] = p
    return got


def build(out, files, package=PACKAGE, version="latest", mpy_versions=("py", 6)):
    """Write an index for one package into `out`. files: {target_path: path}. Returns the package
    JSON. The same .py files are listed for every mpy version (MicroPython imports source too)."""
    hashes = []
    for target in sorted(files):
        with open(files[target], "rb") as f:
            data = f.read()
        short = hashlib.sha256(data).hexdigest()[:SHORT]
        d = os.path.join(out, "file", short[:2])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, short), "wb") as f:
            f.write(data)
        hashes.append([target, short])
    pkg = {"hashes": hashes, "deps": [], "version": version}
    for v in mpy_versions:
        d = os.path.join(out, "package", str(v), package)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "latest.json"), "w") as f:
            json.dump(pkg, f)
    return pkg


class Server:
    """http.server on 127.0.0.1 for an index folder, in a thread; .url is the --index value."""

    def __init__(self, folder, port=0):
        folder = os.path.abspath(folder)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=folder, **kw)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self._t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._t.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch")
    b = sub.add_parser("build")
    b.add_argument("out")
    s = sub.add_parser("serve")
    s.add_argument("out")
    s.add_argument("--port", type=int, default=8000)
    a = ap.parse_args(argv)
    files = fetch()
    if a.cmd == "fetch":
        print("mip cache: %s (%s)" % (", ".join(sorted(files)), os.path.join(CACHE, PACKAGE)))
        return 0
    build(a.out, files)
    if a.cmd == "build":
        print("index for %s in %s" % (PACKAGE, a.out))
        return 0
    srv = Server(a.out, a.port)
    print("serving %s at %s (mpremote mip install --index %s %s)" % (a.out, srv.url, srv.url, PACKAGE))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
