"""MQTT brokers for host tests and scripts (scripts/sim.py, bench.py): mosquitto (Debian binary) or, when it is
missing, amqtt in a thread; `free_port()`; and AWS-IoT-style test certificates made with openssl. The one broker
launcher of the repository: tests and scripts import it (scripts put host_tests/ on sys.path).

    b = Broker(workdir=None, prefer="mosquitto", persistence=False).start()   # .host, .port, .url, .kind
    b.pause(); b.resume()   # mosquitto only: unreachable, then back on the same port (persistence=True keeps
                            # the sessions and their queued QoS 1 messages across it, as a real broker's disk does)
    b.stop()

Fixtures (session scope; import them into a test module to use them):
    from peers.broker import aws_certs, broker, tls_broker  # noqa: F401
  broker      -> Broker (plain, anonymous) with .host, .port, .url
  aws_certs   -> AwsCerts: a CA ("AmazonRootCA1.pem"), a server cert for localhost/127.0.0.1 and the IoT host
                 name, and a device cert + key named like an AWS IoT download
  tls_broker  -> Broker with a mutual-TLS listener (require_certificate true) using aws_certs; .certs
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
AWS_HOST = "a1b2c3d4e5f6g7-ats.iot.us-west-2.amazonaws.com"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(host, port, timeout_s, proc=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Broker:
    """A running broker on 127.0.0.1:<port>. `tls`: dict(cafile, certfile, keyfile) for a mutual-TLS listener."""

    def __init__(self, port=None, tls=None, workdir=None, prefer="mosquitto", users=None, persistence=False):
        self.host = "127.0.0.1"
        self.users = users  # {user: password}: anonymous clients refused (mosquitto only)
        self.persistence = persistence  # mosquitto: sessions saved in workdir when it stops, loaded when it starts
        self.port = port or free_port()
        self.tls = tls
        self.kind = None
        self._proc = None
        self._amqtt = None
        self._dir = workdir or tempfile.mkdtemp(prefix="broker")
        self._prefer = prefer

    @property
    def url(self):
        return "tcp://%s:%d" % (self.host, self.port)

    def start(self, timeout_s=10):
        if MOSQUITTO and self._prefer == "mosquitto":
            self._start_mosquitto(timeout_s)
        else:
            self._start_amqtt(timeout_s)
        return self

    def _start_mosquitto(self, timeout_s):
        conf = os.path.join(self._dir, "mosquitto-%d.conf" % self.port)
        lines = ["listener %d 127.0.0.1" % self.port]
        if self.persistence:  # written when mosquitto stops (SIGTERM), read back when it starts
            lines += ["persistence true", "persistence_location %s/" % self._dir, "autosave_interval 0"]
        else:
            lines.append("persistence false")
        if self.users:
            pw = os.path.join(self._dir, "passwd-%d" % self.port)
            with open(pw, "w") as f:
                f.write("".join("%s:%s\n" % kv for kv in self.users.items()))
            subprocess.run(["mosquitto_passwd", "-U", pw], check=True, capture_output=True)
            lines += ["allow_anonymous false", "password_file %s" % pw]
        else:
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', which cannot read private temp dirs
        if self.tls:
            lines += [
                "cafile %s" % self.tls["cafile"],
                "certfile %s" % self.tls["certfile"],
                "keyfile %s" % self.tls["keyfile"],
                "require_certificate %s" % ("true" if self.tls.get("require_certificate", True) else "false"),
            ]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._log = open(os.path.join(self._dir, "mosquitto-%d.log" % self.port), "ab")  # a resume() appends
        self._proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=self._log, stderr=subprocess.STDOUT)
        if not _wait_port(self.host, self.port, timeout_s, self._proc):
            self.stop()
            raise RuntimeError("mosquitto did not start on port %d (see %s)" % (self.port, self._log.name))
        self.kind = "mosquitto"

    def _start_amqtt(self, timeout_s):
        import asyncio

        from amqtt.broker import Broker as AmqttBroker

        listener = {"type": "tcp", "bind": "127.0.0.1:%d" % self.port}
        if self.tls:
            listener.update(
                ssl=True, cafile=self.tls["cafile"], certfile=self.tls["certfile"], keyfile=self.tls["keyfile"]
            )
        config = {
            "listeners": {"default": listener},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run():
            asyncio.set_event_loop(self._loop)

            async def main():
                self._amqtt = AmqttBroker(config)
                await self._amqtt.start()
                ready.set()

            self._loop.run_until_complete(main())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s) or not _wait_port(self.host, self.port, timeout_s):
            raise RuntimeError("amqtt did not start on port %d" % self.port)
        self.kind = "amqtt"

    def pause(self):
        """The broker becomes unreachable (its process stops, every connection drops); resume() brings it back on the
        same port. mosquitto only (amqtt runs inside this process): RuntimeError otherwise."""
        if self.kind != "mosquitto":
            raise RuntimeError("pausing the broker needs mosquitto (this one is %s)" % self.kind)
        self._stop_mosquitto()

    def resume(self, timeout_s=10):
        """Start the paused mosquitto again on the same port (RuntimeError if it does not come up)."""
        if self.kind != "mosquitto":
            raise RuntimeError("resuming the broker needs mosquitto (this one is %s)" % self.kind)
        if self._proc is None:
            self._start_mosquitto(timeout_s)

    def _stop_mosquitto(self):
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
            self._log.close()

    def stop(self):
        self._stop_mosquitto()
        if self._amqtt is not None:
            import asyncio

            fut = asyncio.run_coroutine_threadsafe(self._amqtt.shutdown(), self._loop)
            try:
                fut.result(5)
            except Exception:
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._amqtt = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class AwsCerts:
    """Paths and bytes of AWS-IoT-style test credentials made by make_aws_style_certs()."""

    def __init__(self, d, prefix):
        self.dir = d
        self.prefix = prefix
        self.ca = os.path.join(d, "AmazonRootCA1.pem")
        self.ca_key = os.path.join(d, "ca.key")
        self.server_cert = os.path.join(d, "server.crt")
        self.server_key = os.path.join(d, "server.key")
        self.cert = os.path.join(d, "%s-certificate.pem.crt" % prefix)
        self.key = os.path.join(d, "%s-private.pem.key" % prefix)
        self.public_key = os.path.join(d, "%s-public.pem.key" % prefix)

    def read(self, which):
        with open(getattr(self, which), "rb") as f:
            return f.read()


def _openssl(*args, cwd):
    subprocess.run(("openssl",) + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_aws_style_certs(d, prefix="a1b2c3d4e5", days=3650, hosts=("localhost", AWS_HOST), other_ca=False):
    """Generate a CA, a server certificate (CN=localhost; SAN: hosts + 127.0.0.1) and a device certificate + RSA
    key (traditional 'BEGIN RSA PRIVATE KEY', like AWS) signed by the CA, named like an AWS IoT download."""
    os.makedirs(d, exist_ok=True)
    c = AwsCerts(d, prefix)
    _openssl("genrsa", "-traditional", "-out", c.ca_key, "2048", cwd=d)
    _openssl(
        "req", "-x509", "-new", "-key", c.ca_key, "-sha256", "-days", str(days),
        "-subj", "/O=Test/CN=Test Root CA 1", "-out", c.ca, cwd=d,
    )  # fmt: skip
    san = ",".join(["DNS:%s" % h for h in hosts] + ["IP:127.0.0.1"])
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
    for key, crt, cn, extfile in (
        (c.server_key, c.server_cert, "localhost", ext),
        (c.key, c.cert, "AWS IoT Certificate", None),
    ):
        csr = crt + ".csr"
        _openssl("genrsa", "-traditional", "-out", key, "2048", cwd=d)
        _openssl("req", "-new", "-key", key, "-subj", "/CN=%s" % cn, "-out", csr, cwd=d)
        args = ["x509", "-req", "-in", csr, "-CA", c.ca, "-CAkey", c.ca_key, "-CAcreateserial"]
        args += ["-days", str(days), "-sha256", "-out", crt]
        if extfile:
            args += ["-extfile", extfile]
        _openssl(*args, cwd=d)
        os.unlink(csr)
    _openssl("rsa", "-in", c.key, "-pubout", "-out", c.public_key, cwd=d)
    return c


# ---------------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="session")
def broker():
    b = Broker().start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def aws_certs(tmp_path_factory):
    return make_aws_style_certs(str(tmp_path_factory.mktemp("awscerts")))


@pytest.fixture(scope="session")
def tls_broker(aws_certs):
    b = Broker(tls=dict(cafile=aws_certs.ca, certfile=aws_certs.server_cert, keyfile=aws_certs.server_key))
    b.start()
    b.certs = aws_certs
    yield b
    b.stop()
