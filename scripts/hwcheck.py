#!/usr/bin/env python3
"""Board bring-up check: one line per item, PASS/FAIL/WARN/SKIP/INFO, with the fix for each failure.

On the board (a Freematics ONE+ over USB, after `scripts/deploy.py`):
    python scripts/hwcheck.py --port /dev/ttyUSB0 [--timeout 10] [--reg-timeout 60] [--gnss-timeout 60]
        [--gnss auto|uart|modem|coproc|none] [--mpremote-args ARGS]
  runs `mpremote connect PORT exec "import hwcheck; hwcheck.main(...)"`: the check (firmware/hwcheck.py)
  runs ON the ESP32, which owns the modem (UART, power key) and the OBD co-processor, and its lines
  are streamed here as they come.

On this machine (a USB SIM7600, an ELM327 adapter, a GNSS receiver on serial ports):
    python scripts/hwcheck.py --modem /dev/ttyUSB2 [--obd /dev/ttyUSB0] [--gps PATH] [--board oneplus-b]
        [--config config.json] [--sim-pin PIN] [--timeout 10] [--reg-timeout 60] [--gnss-timeout 60]
  builds a board.host.HostBoard on those paths and calls the same firmware/hwcheck.run().

Items: board model (co-processor ATI -> devType -> model), OBD protocol, battery, modem present &
powered, modem model and firmware (and MQTT over SSL support), SIM, signal, registration, data (APN,
PDP context, MQTT service), DNS of broker.host, TLS (certificates, SSL context), broker (CONNECT with
the configured TLS and credentials), publish (a QoS 1 test message on <prefix>/<id>/status), GNSS fix. In host mode the broker items need
--config (and --secrets for credentials and certificates).
Exit status 1 when anything failed, 2 when the check could not run (a wrong port, a config that does
not load: said in one line).
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
SCRIPTS = os.path.join(ROOT, "scripts")
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)
if SCRIPTS not in sys.path:
    sys.path.append(SCRIPTS)

from portcheck import port_problem  # noqa: E402

DEFAULT_HOST_BOARD = "esp32-sim7600"  # pins are irrelevant on the host; its devtypes are empty (no comparison)


def _load_fw():
    """The firmware's hwcheck package (firmware/hwcheck/), under its own name `hwcheck` as on the board
    (its areas import hwcheck.*), loaded from its path: `import hwcheck` may find this script."""
    m = sys.modules.get("hwcheck")
    if m is None or not hasattr(m, "AREAS"):
        import importlib.util

        pkg = os.path.join(FIRMWARE, "hwcheck")
        spec = importlib.util.spec_from_file_location("hwcheck", os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg])
        m = importlib.util.module_from_spec(spec)
        sys.modules["hwcheck"] = m
        spec.loader.exec_module(m)
    return m


fw = _load_fw()


def mpremote_exe():
    local = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return local if os.path.exists(local) else (shutil.which("mpremote") or "mpremote")


def board_call(a):
    """The Python line run on the board."""
    kw = ["timeout_ms=%d" % int(a.timeout * 1000), "reg_timeout_ms=%d" % int(a.reg_timeout * 1000),
          "gnss_timeout_ms=%d" % int(a.gnss_timeout * 1000)]
    if a.gnss != "auto":
        kw.append("gnss=%r" % a.gnss)
    return "import hwcheck; hwcheck.main(%s)" % ", ".join(kw)


def port_command(a):
    return [a.mpremote or mpremote_exe(), "connect", a.port] + shlex.split(a.mpremote_args or "") + ["exec", board_call(a)]


NOT_DEPLOYED = ("no module named 'hwcheck'", "no module named hwcheck")


IN_USE = ("in use by another program", "device or resource busy", "could not exclusively lock")


def run_on_board(a, out):
    """Run the check on the board through mpremote, streaming its lines; exit status."""
    problem = port_problem(a.port, "--port")
    if problem:
        print("hwcheck: " + problem, file=out, flush=True)
        return 2
    cmd = port_command(a)
    print("$ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, cwd=ROOT)
    except OSError as e:
        print("hwcheck: cannot run mpremote (%s): pip install mpremote (or `make venv`)" % e, file=out, flush=True)
        return 2
    fails = 0
    summary = None
    text = []
    for line in p.stdout:
        line = line.rstrip("\r\n")
        text.append(line)
        print(line, file=out, flush=True)
        if line.startswith(fw.FAIL + " "):
            fails += 1
        elif line.startswith("hwcheck: "):
            summary = line
    rc = p.wait()
    low = "\n".join(text).lower()
    if any(s in low for s in NOT_DEPLOYED):
        print("hwcheck: the firmware is not on the board: deploy it first (python scripts/build.py && "
              "python scripts/deploy.py --port %s --board oneplus-b)" % a.port, file=out, flush=True)
        return 2
    if summary is None and any(s in low for s in IN_USE):
        print("hwcheck: %s is held by another program (a serial monitor, another mpremote, ModemManager): close it "
              "and retry" % a.port, file=out, flush=True)
        return 2
    if summary is None:
        print("hwcheck: the check did not complete on the board (mpremote exit %d): see the output above" % rc, file=out, flush=True)
        return 2
    return 1 if fails else 0


def host_board(a):
    from board import load_board
    from board.host import HostBoard

    desc = load_board(a.board or DEFAULT_HOST_BOARD)
    return HostBoard(desc, modem=a.modem, obd=a.obd, gps=a.gps)


def host_config(a):
    cfg = None
    if a.config:
        from telelogger import config

        cfg = config.load(a.config, a.secrets)
    if a.sim_pin is not None:
        cfg = dict(cfg or {})
        cfg["cellular"] = dict(cfg.get("cellular") or {})
        cfg["cellular"]["sim_pin"] = a.sim_pin
    return cfg


def host_main(a, out=None):
    """Host mode: the firmware's check on a HostBoard; returns the items."""
    out = out or sys.stdout
    m = _load_fw()

    def emit(line):
        print(line, file=out, flush=True)

    try:
        board = host_board(a)
    except Exception as e:
        emit(m.format_item(m.FAIL, "board file", str(e), "pass --board with a name from boards/ (oneplus-a, oneplus-b, oneplus-h, esp32-sim7600)"))
        return [(m.FAIL, "board file", str(e), None)]
    if a.gps and a.gnss == "auto":
        gnss = "uart"
    else:
        gnss = None if a.gnss == "auto" else a.gnss
    try:
        return m.run(board, host_config(a), emit, timeout_ms=int(a.timeout * 1000), reg_timeout_ms=int(a.reg_timeout * 1000),
                           gnss_timeout_ms=int(a.gnss_timeout * 1000), power_on=False, gnss=gnss, board_known=bool(a.board))
    finally:
        board.close()


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", help="the board's USB serial port: run the check on the board (mpremote)")
    ap.add_argument("--mpremote-args", default="", help="extra mpremote arguments after `connect PORT` (e.g. resume)")
    ap.add_argument("--mpremote", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--modem", help="host mode: the modem's AT port (e.g. /dev/ttyUSB2)")
    ap.add_argument("--obd", help="host mode: the OBD co-processor's / ELM327's port")
    ap.add_argument("--gps", help="host mode: a GNSS receiver's NMEA port")
    ap.add_argument("--board", help="host mode: board name (boards/<name>.json) to compare the co-processor's devType with")
    ap.add_argument("--config", help="host mode: config.json (cellular, broker, gnss.source, device_id, topic_prefix)")
    ap.add_argument("--secrets", help="host mode: secrets.json (mqtt_user/mqtt_pass, certs.*: paths from the cwd)")
    ap.add_argument("--gnss", default="auto", choices=("auto", "uart", "modem", "coproc", "none"), help="GNSS source to check")
    ap.add_argument("--sim-pin", default=None)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for each modem/co-processor answer")
    ap.add_argument("--reg-timeout", type=float, default=60.0, help="seconds to wait for network registration")
    ap.add_argument("--gnss-timeout", type=float, default=60.0, help="seconds to wait for a GNSS fix")
    a = ap.parse_args(argv)
    host = a.modem or a.obd or a.gps
    if a.port and host:
        ap.error("--port runs the check on the board: do not combine it with --modem/--obd/--gps")
    if not (a.port or host):
        ap.error("give --port /dev/ttyUSB0 (a Freematics ONE+ / ESP32 board) or host ports --modem/--obd/--gps")
    return a


def main(argv=None, out=None):
    a = parse(argv)
    out = out or sys.stdout
    if a.port:
        return run_on_board(a, out)
    for flag, path in (("--modem", a.modem), ("--obd", a.obd), ("--gps", a.gps)):
        problem = path and port_problem(path, flag)
        if problem:
            print("hwcheck: " + problem, file=out, flush=True)
            return 2
    try:
        host_config(a)
    except Exception as e:
        print("hwcheck: %s does not load: %s (fix what it names and retry)" % (a.config, e), file=out, flush=True)
        return 2
    items = host_main(a, out)
    return 1 if [i for i in items if i[0] == "FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
