"""Is this path a serial port the tools can open? One line naming the mistake and the fix, or None.

    from portcheck import port_problem
    msg = port_problem("/dev/ttyUSB9")   # '--port /dev/ttyUSB9: no such port; the serial ports here are /dev/ttyUSB0'

Used by scripts/hwcheck.py (--port, --modem/--obd/--gps) and scripts/provision.py (--port) before
they open anything, so a wrong path is said as such (not a termios traceback, not mpremote's "may be
in use by another program" for a port that is not there).
"""
import errno
import glob
import os

PORT_GLOBS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/cu.usb*", "/dev/tty.usb*")


def serial_ports():
    out = []
    for g in PORT_GLOBS:
        out += glob.glob(g)
    return sorted(out)


def _where():
    ports = serial_ports()
    if ports:
        return "the serial ports here are %s" % ", ".join(ports)
    return "no USB serial port is present: plug the board in with a data cable (not a charge-only one)"


def _group(path):
    try:
        import grp

        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (ImportError, KeyError, OSError):
        return "dialout"


def port_problem(path, flag="--port"):
    """None when `path` opens as a terminal device (a USB serial port, a pty), else one line:
    what is wrong with `flag` PATH and what to do."""
    if not path:
        return "%s needs a path, e.g. /dev/ttyUSB0; %s" % (flag, _where())
    if not os.path.exists(path):
        return "%s %s: no such port; %s" % (flag, path, _where())
    if os.path.isdir(path):
        return "%s %s is a directory, not a serial port; %s" % (flag, path, _where())
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        g = _group(path)
        return ("%s %s: permission denied: add yourself to the %s group (sudo usermod -aG %s $USER, then log in "
                "again)" % (flag, path, g, g))
    except OSError as e:
        if e.errno == errno.EBUSY:
            return ("%s %s is held by another program (a serial monitor, mpremote, ModemManager): close it and "
                    "retry" % (flag, path))
        return "%s %s cannot be opened (%s): is the device still plugged in? %s" % (flag, path, e.strerror or e, _where())
    try:
        if not os.isatty(fd):
            return "%s %s is not a serial port (not a terminal device); %s" % (flag, path, _where())
    finally:
        os.close(fd)
    return None
