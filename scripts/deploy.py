#!/usr/bin/env python3
"""Deploy the firmware build to a board with mpremote.

    python scripts/deploy.py --port /dev/ttyUSB0 --board oneplus-b [--config config.json]
        [--secrets secrets.json] [--overwrite-secrets] [--wipe-queue] [--no-reset] [--logs]
    python scripts/deploy.py --dry-run --board oneplus-b --config config.json --secrets secrets.json

Copies build/firmware (run scripts/build.py first; `make deploy` does), boot.py/main.py,
boards/<board>.json (as board.json), the config and the secrets to the board; installs
umqtt.simple with `mpremote mip install` when the config's transport is wifi; resets.
An existing secrets.json and the queue folder are never touched unless asked.
`--logs` alone follows the firmware's console output (Ctrl-C to stop). `--dry-run` validates the
files and prints what would be copied, without a board (no --port needed).
`--mpremote-args resume` (tests, the host interpreter behind a pty) is passed after `connect PORT`.
"""
import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE_SRC = os.path.join(ROOT, "firmware")
sys.path.insert(0, FIRMWARE_SRC)

MARGIN = 8192  # bytes kept free on the board's filesystem after the deploy
CONSOLE_BAUD = 115200


class DeployError(Exception):
    pass


_MASK = []  # the secret values of the files being deployed: never printed (mask_secrets)


def say(msg):
    print("deploy: " + mask(msg), flush=True)


def secret_values(config=None, secrets=None):
    """The strings no message may show, read from the files as given (valid or not): every string in
    the secrets file (certs.* only when it is not a file name: a PEM body pasted in), and the config's
    cellular.sim_pin. Values under 4 characters are not masked (they would mask ordinary words)."""
    out = []

    def walk(v, certs=False):
        if isinstance(v, dict):
            for k in v:
                walk(v[k], certs or k == "certs")
        elif isinstance(v, list):
            for x in v:
                walk(x, certs)
        elif isinstance(v, str) and len(v) >= 4:
            if certs and len(v) <= 64 and "\n" not in v and "-----" not in v:
                return  # a file name (cert_files names it when it is missing)
            out.append(v)

    for path, pick in ((secrets, lambda d: d), (config, lambda d: (d.get("cellular") or {}).get("sim_pin"))):
        if not path:
            continue
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(d, dict):
            walk(pick(d))
    for v in list(out):  # as a message renders it: repr/JSON escapes, PEM lines
        out += [json.dumps(v)[1:-1], repr(v)[1:-1]] + [ln for ln in v.splitlines() if len(ln) >= 16]
    return sorted(set(out), key=len, reverse=True)


def mask(text, values=None):
    """text with every secret value (secret_values) replaced by ***."""
    for v in _MASK if values is None else values:
        if v in text:
            text = text.replace(v, "***")
    return text


def mask_secrets(config, secrets):
    """From here on, say() and the error line mask the secret values of these files."""
    _MASK[:] = secret_values(config, secrets)


def _mpremote_exe():
    local = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return local if os.path.exists(local) else "mpremote"


class Remote:
    """Runs mpremote against one port: `connect PORT <extra args> <commands>`."""

    def __init__(self, port, extra=(), timeout=60, exe=None):
        self.port = port
        self.extra = list(extra)
        self.timeout = timeout
        self.exe = exe or _mpremote_exe()

    def run(self, args, timeout=None, what="mpremote"):
        cmd = [self.exe, "connect", self.port] + self.extra + list(args)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            raise DeployError("board not answering on %s: %s timed out after %d s (is another program using the port?)" % (self.port, what, timeout or self.timeout))
        except FileNotFoundError:
            raise DeployError("mpremote not found: pip install mpremote (or run `make venv`)")
        if p.returncode != 0:
            out = (p.stderr + p.stdout).strip()
            raise DeployError("%s failed on %s: %s" % (what, self.port, out[-1500:] or "exit %d" % p.returncode))
        return p.stdout

    def exec(self, code, timeout=None, what="exec"):
        return self.run(["exec", code], timeout=timeout, what=what)


def check_port(port):
    """A device path must exist; mpremote shortcuts (auto, a0, u0, c0, id:..., port:...) pass."""
    if port.startswith("/") or port.startswith("COM"):
        if not os.path.exists(port):
            raise DeployError("port %s does not exist: is the board plugged in and powered? (ls /dev/ttyUSB* /dev/ttyACM*)" % port)


def load_board_file(name):
    from board import BoardError, load_board

    path = os.path.join(ROOT, "boards", name + ".json")
    if not os.path.exists(path):
        names = sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "boards")) if f.endswith(".json"))
        raise DeployError("unknown board %r: choose one of %s" % (name, ", ".join(names)))
    try:
        desc = load_board(path)
    except BoardError as e:
        raise DeployError("board file invalid: %s" % e)
    return path, desc


def check_config(config, secrets):
    """Validate with telelogger.config when it exists; returns the config dict (or None)."""
    if config is None:
        if secrets is not None:
            raise DeployError("--secrets needs --config (the pair is validated together)")
        return None
    for p in (config, secrets):
        if p is not None and not os.path.exists(p):
            raise DeployError("file not found: %s" % p)
    try:
        from telelogger import config as tconfig
    except ImportError:
        tconfig = None
    if tconfig is not None and hasattr(tconfig, "load"):
        try:
            return tconfig.load(config, secrets)
        except tconfig.ConfigError as e:
            raise DeployError("config refused (%s): %s" % (config if secrets is None else config + " + " + secrets, e))
    # validator not available: at least require JSON objects
    for p in (config, secrets):
        if p is None:
            continue
        try:
            with open(p) as f:
                d = json.load(f)
        except ValueError as e:
            raise DeployError("config refused: %s is not valid JSON: %s" % (p, e))
        if not isinstance(d, dict):
            raise DeployError("config refused: %s must hold a JSON object" % p)
    with open(config) as f:
        return json.load(f)


def cert_files(cfg, secrets):
    """[(local, remote)] for the certificate files the secrets name (certs.ca/cert/key): the firmware
    opens those paths on the board, so a deploy that copies the secrets copies them too. A named file
    that cannot be found is refused with where it was looked for (a TLS config without its CA would
    not start on the board)."""
    certs = ((cfg or {}).get("secrets") or {}).get("certs") or {}
    out = []
    for k in ("ca", "cert", "key"):
        name = certs.get(k)
        if not name:
            continue
        tried = []
        for base in (os.path.dirname(os.path.abspath(secrets)), os.getcwd()):
            cand = name if os.path.isabs(name) else os.path.join(base, name)
            tried.append(cand)
            if os.path.isfile(cand):
                out.append((cand, name.lstrip("/")))
                break
        else:
            raise DeployError("secrets certs.%s names %r, which is not there (looked at %s): put the PEM file there, "
                              "or clear certs.%s" % (k, name, ", ".join(sorted(set(tried))), k))
    return out


def plan(build_dir, board_path, board_name, config, secrets, frozen=False):
    """[(local, remote)] of everything to copy; remote paths are relative to the board's root.
    frozen: the board runs a MicroPython image with the firmware frozen in (boards/manifest.py):
    only boot/main, the board file, config and secrets are copied."""
    if not os.path.isdir(build_dir):
        raise DeployError("no build at %s: run `python scripts/build.py` (or `make build`) first" % build_dir)
    files = []
    for dirpath, dirs, names in os.walk(build_dir):
        dirs.sort()
        for n in sorted(names):
            if n.endswith(".mpy") or n.endswith(".py"):
                local = os.path.join(dirpath, n)
                files.append((local, os.path.relpath(local, build_dir).replace(os.sep, "/")))
    if not any(r.endswith(".mpy") for _, r in files):
        raise DeployError("the build at %s holds no .mpy modules: run scripts/build.py" % build_dir)
    if frozen:
        files = [f for f in files if not f[1].endswith(".mpy")]
    for top in ("boot.py", "main.py"):  # kept as source; the build copies them, else take firmware/
        src = os.path.join(FIRMWARE_SRC, top)
        if os.path.exists(src) and not any(r == top for _, r in files):
            files.append((src, top))
    files.append((board_path, "board.json"))
    files.append((board_path, "boards/%s.json" % board_name))
    if config:
        files.append((config, "config.json"))
    if secrets:
        files.append((secrets, "secrets.json"))
    return files


_INFO = """
import os, json
def _sz(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return -1
def _h(p):
    try:
        import hashlib, binascii
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            while True:
                b = f.read(512)
                if not b:
                    break
                h.update(b)
        return binascii.hexlify(h.digest()).decode()
    except Exception:
        return None
_s = os.statvfs('.')
_f = (_s[1] or _s[0]) * _s[4]
print('DEPLOYINFO ' + json.dumps({'free': _f, 'sizes': [_sz(p) for p in %s], 'secrets_sha256': _h('secrets.json')}))
"""

# The pointer that selects an OTA slot (telelogger/otaboot.py): a deploy removes it, so that the
# board runs the tree just copied (the slots stay: the next update reuses their space)
OTA_PTR = "ota/ptr"

_PREP = """
import os
def _mk(p):
    try:
        os.mkdir(p)
    except OSError:
        pass
def _rm(p):
    try:
        if os.stat(p)[0] & 0x4000:
            for n in os.listdir(p):
                _rm(p + '/' + n)
            os.rmdir(p)
        else:
            os.remove(p)
    except OSError:
        pass
for _d in %s:
    _mk(_d)
for _p in %s:
    _rm(_p)
print('DEPLOYPREP ok')
"""


def board_info(remote, paths):
    out = remote.exec(_INFO % json.dumps(paths), what="reading the board's filesystem")
    for line in out.splitlines():
        if line.startswith("DEPLOYINFO "):
            return json.loads(line[len("DEPLOYINFO ") :])
    raise DeployError("board on %s did not answer the filesystem query (got %r)" % (remote.port, out[-300:]))


def config_cache(a, cfg, files):
    """(local, remote) of the validated config's cache (telelogger.configcache), made here with the
    validator that just accepted the files and the build's compiled defaults, so the board's first boot
    reads it instead of importing the validator. None when the board's files will not be exactly these
    (its own secrets.json kept, no config copied) or the firmware is frozen: the board then validates at
    its first boot and restarts once."""
    copied = dict((r, loc) for loc, r in files)
    if cfg is None or a.frozen or "config.json" not in copied or (a.secrets and "secrets.json" not in copied):
        return None
    from telelogger import configcache

    schema = os.path.join(a.build, "telelogger", "schema.mpy")
    import tempfile

    local = os.path.join(tempfile.mkdtemp(prefix="fm-deploy-"), "queue_cfg.json")
    if not configcache.save(local, copied["config.json"], copied.get("secrets.json"), cfg, schema=schema):
        return None
    return local, configcache.cache_path(a.queue_dir.strip("/"))


def deploy(a):
    if not a.dry_run:
        check_port(a.port)
    mask_secrets(a.config, a.secrets)
    board_path, desc = load_board_file(a.board)
    say("board %s (%s)%s" % (a.board, desc["model"], " -- EXAMPLE wiring, check the pins" if desc.get("example") else ""))
    cfg = check_config(a.config, a.secrets)
    if cfg is not None:
        say("config %s valid (transport %s)" % (a.config, cfg.get("transport", "?")))
        from telelogger import config as tconfig

        for w in getattr(tconfig, "warnings", lambda c: [])(cfg):
            say("warning: %s" % w)
    certs = cert_files(cfg, a.secrets) if a.secrets else []  # refused before the board is touched
    files = plan(a.build, board_path, a.board, a.config, a.secrets, frozen=a.frozen)
    if a.dry_run:
        files += certs
        say("dry run: would copy %d files (%d bytes)%s:" % (len(files), sum(os.path.getsize(loc) for loc, _ in files),
                                                          " to " + a.port if a.port else ""))
        for loc, r in files:
            print("  %-40s %7d bytes" % (r, os.path.getsize(loc)))
        if a.secrets:
            say("secrets.json%s replaces the board's only with --overwrite-secrets" % (
                " and its certificates" if certs else ""))
        if (cfg or {}).get("transport") == "wifi":
            say("would install umqtt.simple (mpremote mip install)")
        return
    remote = Remote(a.port, shlex.split(a.mpremote_args or ""), timeout=a.timeout)

    say("connecting to %s" % a.port)
    remotes = [r for _, r in files]
    shadows = [r[:-4] + ".py" for r in remotes if r.endswith(".mpy")]  # a stale .py would win over the .mpy
    # an earlier build's empty package __init__ (scripts/build.py writes none now): it would cost a name for nothing
    pkgs = sorted({r.rsplit("/", 1)[0] for r in remotes if r.endswith(".mpy") and "/" in r})
    shadows += [p + "/__init__" + x for p in pkgs if p + "/__init__.mpy" not in remotes for x in (".mpy", ".py")]
    if a.frozen:  # the filesystem comes first on sys.path: any module copy there would shadow the frozen one
        mods = [r for _, r in plan(a.build, board_path, a.board, None, None) if r.endswith(".mpy")]
        shadows = mods + [r[:-4] + ".py" for r in mods]
        say("frozen firmware image: copying only boot/main, board, config and secrets")
    info = board_info(remote, remotes + ["secrets.json", a.queue_dir, OTA_PTR] + shadows)
    sizes = info["sizes"]
    existing = dict(zip(remotes, sizes[: len(remotes)]))
    has_secrets = sizes[len(remotes)] >= 0
    has_queue = sizes[len(remotes) + 1] >= 0
    has_ptr = sizes[len(remotes) + 2] >= 0
    stale = [p for p, s in zip(shadows, sizes[len(remotes) + 3 :]) if s >= 0]

    if a.secrets and has_secrets and not a.overwrite_secrets:
        files = [f for f in files if f[1] != "secrets.json"]
        say("kept the board's existing secrets.json (pass --overwrite-secrets to replace it); its certificates "
            "stay as they are")
        theirs = info.get("secrets_sha256")  # only a digest crosses the cable, never the file
        with open(a.secrets, "rb") as f:
            ours = hashlib.sha256(f.read()).hexdigest()
        if theirs and theirs != ours:
            say("warning: the board's secrets.json differs from %s and was NOT replaced: a changed key or password "
                "(a key rotation) does not reach the board without --overwrite-secrets" % a.secrets)
        elif theirs:
            say("the board's secrets.json is identical to %s" % a.secrets)
    elif a.secrets:
        files += certs
        if certs:
            say("copying the certificates the secrets name: %s" % ", ".join(r for _, r in certs))
    cache = config_cache(a, cfg, files)
    if cache:
        files.append(cache)
    need = sum(os.path.getsize(loc) for loc, _ in files) - sum(max(existing.get(r, -1), 0) for _, r in files)
    if need + MARGIN > info["free"]:
        raise DeployError(
            "free flash too small on %s: the deploy needs %d more bytes (+%d margin), only %d free; "
            "remove files or use --wipe-queue" % (a.port, need, MARGIN, info["free"])
        )
    say("board answers: %d bytes free, %d needed" % (info["free"], max(need, 0)))

    dirs = sorted({r.rsplit("/", 1)[0] for _, r in files if "/" in r}, key=lambda d: d.count("/"))
    expanded = []
    for d in dirs:  # parents first
        parts = d.split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in expanded:
                expanded.append(p)
    remove = list(stale)
    if a.wipe_queue and has_queue:
        remove.append(a.queue_dir)
        say("wiping the queue folder %s (--wipe-queue)" % a.queue_dir)
    elif has_queue:
        say("kept the queue folder %s (pass --wipe-queue to clear it)" % a.queue_dir)
    if has_ptr:  # the board would keep booting an OTA slot instead of this tree (FORMAT.md "OTA updates")
        remove.append(OTA_PTR)
        say("removing %s: the board boots the deployed tree, not an OTA slot" % OTA_PTR)
    if stale:
        say("removing %d stale file(s) that would shadow the %s" % (len(stale), "frozen modules" if a.frozen else ".mpy build"))
    remote.exec(_PREP % (json.dumps(expanded), json.dumps(remove)), what="preparing folders")

    say("copying %d files" % len(files))
    args = []
    for loc, r in files:
        if args:
            args.append("+")
        args += ["fs", "cp", loc, ":" + r]
    remote.run(args, timeout=max(a.timeout, 5 * len(files)), what="copying files")
    for loc, r in files:
        print("  %-40s %7d bytes" % (r, os.path.getsize(loc)))

    transport = (cfg or {}).get("transport")
    if transport == "wifi":
        mip = ["mip", "install"]
        if a.mip_index:
            mip += ["--index", a.mip_index]
        if a.mip_target:
            mip += ["--target", a.mip_target]
        say("installing umqtt.simple (mpremote mip install from %s)" % (a.mip_index or "micropython.org; needs the internet"))
        remote.run(mip + ["umqtt.simple"], timeout=max(a.timeout, 120), what="mip install umqtt.simple")
    if not a.no_reset:
        say("resetting the board")
        remote.run(["reset"], timeout=30, what="reset")
    say("done: %d files on %s" % (len(files), a.port))


def follow_logs(port, duration=None, baud=CONSOLE_BAUD, out=sys.stdout):
    """Print the board's console output (the firmware log) until Ctrl-C or `duration` s."""
    check_port(port)
    import serial

    try:
        s = serial.Serial(port, baud, timeout=0.2)
    except (serial.SerialException, OSError) as e:
        raise DeployError("cannot open %s: %s" % (port, e))
    say("following the log on %s (Ctrl-C to stop)" % port)
    t0 = time.monotonic()
    try:
        while duration is None or time.monotonic() - t0 < duration:
            data = s.read(256)
            if data:
                out.write(data.decode("utf-8", "replace"))
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        s.close()


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", help="serial port (/dev/ttyUSB0) or an mpremote shortcut")
    ap.add_argument("--board", help="board name: a file in boards/ (oneplus-a, oneplus-b, oneplus-h, esp32-sim7600)")
    ap.add_argument("--config", help="config JSON (validated before copying)")
    ap.add_argument("--secrets", help="secrets JSON (not copied over an existing one without --overwrite-secrets)")
    ap.add_argument("--overwrite-secrets", action="store_true")
    ap.add_argument("--wipe-queue", action="store_true", help="delete the board's stored-but-unsent queue")
    ap.add_argument("--queue-dir", default="queue", help="the queue folder on the board (default queue)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "firmware"))
    ap.add_argument("--no-reset", action="store_true")
    ap.add_argument("--mip-index", help="package index for `mip install umqtt.simple` (default micropython.org; "
                                        "a local mirror: scripts/mip_index.py)")
    ap.add_argument("--mip-target", help="folder on the board for mip packages (default: the board's /lib)")
    ap.add_argument("--frozen", action="store_true",
                    help="the board runs an image with the firmware frozen in (boards/manifest.py): copy no modules")
    ap.add_argument("--logs", action="store_true", help="follow the firmware log (after deploying, or alone)")
    ap.add_argument("--logs-duration", type=float, help="stop following the log after this many seconds")
    ap.add_argument("--mpremote-args", default="", help="extra mpremote arguments after `connect PORT` (e.g. resume)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds for each mpremote step")
    ap.add_argument("--dry-run", action="store_true", help="validate and print what would be copied; no board")
    a = ap.parse_args(argv)
    if not a.port and not a.dry_run:
        ap.error("--port is required (except with --dry-run)")
    if a.dry_run and a.logs:
        ap.error("--dry-run does not follow logs")
    if not a.board and not a.logs:
        ap.error("--board is required to deploy")
    return a


def main(argv=None):
    a = parse(argv)
    try:
        if a.board:
            deploy(a)
        if a.logs:
            follow_logs(a.port, a.logs_duration)
    except DeployError as e:
        print("deploy: error: %s" % mask(str(e)), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
