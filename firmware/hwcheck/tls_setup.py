# hwcheck area: TLS as the telelogger sets it up when broker.tls is on: the certificates secrets
# certs.* name, uploaded under their content-hash names when the module does not hold them yet
# (modem.tls), and the SSL context (cellular.ssl_ctx) configured with AT+CSSLCFG. The broker area
# then connects over that context. Leaves c.authmode (0 none, 1 server verified, 2 mutual).
import gc
import os

from hwcheck.common import FAIL, INFO, PASS, SKIP, WARN, cfg_get, why

_AUTH = ("no certificate check", "server verified", "mutual TLS")


class TlsCheck:
    def __init__(self, c):
        self.c = c

    def order(self, paths):
        """The roles with a file, largest file first (a missing file sorts last: its FAIL line says why)."""
        sized = []
        for role in ("ca", "cert", "key"):
            if paths.get(role):
                try:
                    n = os.stat(paths[role])[6]
                except OSError:
                    n = -1
                sized.append((n, role))
        sized.sort()
        return [r for _, r in reversed(sized)]

    async def run(self):
        c = self.c
        name = c.step = "TLS"
        b = c.cfg.get("broker") if isinstance(c.cfg.get("broker"), dict) else {}
        if c.wifi or not b.get("tls"):
            if not c.wifi and b.get("host"):
                c.add(INFO, name, "not used (broker.tls is off: plain MQTT to port %s)" % (b.get("port") or 1883))
            return
        if not c.mqtt_started:
            c.add(SKIP, name, "not checked (no data connection)", "fix the data item first")
            return
        if c.modem_area(name, sim=False) is None:
            return
        tm = c.need("modem.tls", name, "modem/")
        if tm is None:
            return
        ctx = cfg_get(c.cfg, "cellular", "ssl_ctx", 0)
        paths = cfg_get(c.cfg, "secrets", "certs") or {}
        verify = cfg_get(c.cfg, "broker", "tls_verify", True) is not False
        tls = tm.Tls(c.at, None, cmd_timeout_ms=min(5000, c.timeout_ms), verify=verify)  # firmware: see the modem model item
        names = {}
        up = 0
        try:
            listing = await tls.list()
            for role in self.order(paths):  # one file in RAM at a time, the largest first
                path = paths[role]
                gc.collect()  # the file is one block: room for it before the heap fragments further
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError as e:
                    c.add(FAIL, name, "certs.%s: cannot read %s (%s)" % (role, path, why(e)),
                          "copy the file to the board (make deploy copies the certificates secrets.json names)")
                    return
                tm.check_pem(role, data)
                names[role], sent = await tls.ensure(role, data, listing)
                data = None
                up += 1 if sent else 0
            mode = await tls.configure(ctx, ca=names.get("ca"), cert=names.get("cert"), key=names.get("key"))
        except MemoryError:
            raise  # not a certificate problem: the runner says what crashed
        except Exception as e:
            c.add(FAIL, name, "TLS set-up failed: %s" % why(e),
                  "check certs.ca/cert/key are complete PEM files (and the modem firmware supports SSL: modem model)")
            return
        c.authmode = mode
        held = ", ".join("%s %s" % (r, names[r]) for r in ("ca", "cert", "key") if r in names) or "no certificates"
        detail = "SSL context %d: %s (%s; %d uploaded now)" % (ctx, _AUTH[mode] if 0 <= mode < 3 else mode, held, up)
        if mode == 0:
            c.add(WARN, name, detail, "set certs.ca to the CA of the broker's certificate (secrets.json): the server is not verified")
        else:
            c.add(PASS, name, detail)
