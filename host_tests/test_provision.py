"""scripts/provision.py against the simulator on a pty, with AWS-IoT-named files."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from mphost import ROOT
from peers.broker import make_aws_style_certs
from peers.sim7600 import Sim7600, SimPty

SCRIPT = os.path.join(ROOT, "scripts", "provision.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import provision  # noqa: E402


@pytest.fixture(scope="module")
def aws():
    d = tempfile.mkdtemp(prefix="prov-")
    c = make_aws_style_certs(d)
    yield c
    shutil.rmtree(d, ignore_errors=True)


def _run(*args):
    p = subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def test_provision_from_aws_folder_then_idempotent(aws):
    sim = Sim7600(powered=True, time_scale=0.01)
    pty = SimPty(sim)
    try:
        rc, out = _run("--port", pty.path, "--dir", aws.dir)
        assert rc == 0, out
        assert "3 uploaded, 0 already present" in out
        assert sorted(v for v in sim.certs.values()) == sorted(aws.read(r) for r in ("ca", "cert", "key"))
        names = sorted(sim.certs)
        assert [n.split("-")[0] for n in names] == ["ca", "cert", "key"]
        rc, out = _run("--port", pty.path, "--dir", aws.dir)
        assert rc == 0 and "0 uploaded, 3 already present" in out, out
        assert sorted(sim.certs) == names
    finally:
        pty.close()


def test_provision_replaces_stale_and_keeps_foreign_files(aws, tmp_path):
    sim = Sim7600(powered=True, time_scale=0.01)
    sim.certs["cacert.pem"] = b"someone else's"
    pty = SimPty(sim)
    try:
        rc, out = _run("--port", pty.path, "--dir", aws.dir)
        assert rc == 0, out
        old = [n for n in sim.certs if n.startswith("ca-")]
        other = tmp_path / "otherCA.pem"
        other.write_bytes(aws.read("ca").replace(b"-----END", b"\n-----END"))  # different bytes
        rc, out = _run("--port", pty.path, "--ca", str(other))
        assert rc == 0 and "deleting stale %s" % old[0] in out, out
        assert old[0] not in sim.certs and "cacert.pem" in sim.certs
    finally:
        pty.close()


def _one_line(out):
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in out, out
    return lines[0]


def test_user_mistakes_are_one_line_and_exit_2(aws, tmp_path):
    # /dev/null opens but is no terminal: it ended in termios.error: (25, 'Inappropriate ioctl for device')
    rc, out = _run("--port", "/dev/null", "--dir", aws.dir)
    assert rc == 2
    assert _one_line(out).startswith("provision: --port /dev/null is not a serial port (not a terminal device); ")
    rc, out = _run("--port", "/dev/ttyUSB9", "--dir", aws.dir)  # it gave [Errno 2] No such file or directory
    assert rc == 2 and _one_line(out).startswith("provision: --port /dev/ttyUSB9: no such port; "), out
    assert "plug the board in" in out or "the serial ports here are" in out
    rc, out = _run("--port", str(tmp_path), "--dir", aws.dir)
    assert rc == 2 and "is a directory, not a serial port" in _one_line(out)
    pty = SimPty(Sim7600(time_scale=0.01))
    try:
        rc, out = _run("--port", pty.path, "--ca", str(tmp_path / "nope.pem"))
        assert rc == 2 and _one_line(out) == "provision: --ca %s: no such file" % (tmp_path / "nope.pem")
        rc, out = _run("--port", pty.path, "--dir", str(tmp_path / "nodir"))
        assert rc == 2 and _one_line(out) == "provision: --dir %s: no such folder" % (tmp_path / "nodir")
        rc, out = _run("--port", pty.path)
        assert rc == 2 and _one_line(out) == "provision: nothing to upload: give --dir or --ca/--cert/--key"
    finally:
        pty.close()


def test_a_port_where_no_modem_answers(aws):
    m, s = os.openpty()  # a terminal that never answers: a wrong ttyUSB of a SIM7600
    try:
        rc, out = _run("--port", os.ttyname(s), "--dir", aws.dir, "--timeout", "2")
    finally:
        os.close(m)
        os.close(s)
    assert rc == 1 and "Traceback" not in out
    assert "provisioning FAILED: no answer to AT within 2 s on this port: is it the modem's AT port" in out


def test_clear_errors(aws, tmp_path):
    (tmp_path / "x-certificate.pem.crt").write_bytes(aws.read("cert")[:100])
    shutil.copy(aws.ca, tmp_path / "AmazonRootCA1.pem")
    (tmp_path / "x-private.pem.key").write_bytes(aws.read("key"))
    with pytest.raises(provision.ProvisionError, match="truncated"):
        provision.load(provision.find_aws_files(str(tmp_path)))
    os.unlink(tmp_path / "x-private.pem.key")
    with pytest.raises(provision.ProvisionError, match="no key"):
        provision.find_aws_files(str(tmp_path))
