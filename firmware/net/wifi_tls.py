# The SSL context of the WiFi transport (broker.tls): boot only. Import it, build the context,
# and drop the module again (sys.modules.pop("net.wifi_tls"), and the package attribute).
from net.wifi import WifiError


def tls_context(certs, verify=True, log=None):
    """broker.tls over WiFi: an ssl.SSLContext that verifies the broker against certs.ca (a PEM
    path; umqtt.simple >= 1.4 wraps with server_hostname = the broker host, so the name is checked
    too), with certs.cert + certs.key as the client's. Without certs.ca it refuses (WifiError
    naming certs.ca) unless verify is False (config broker.tls_verify: false): then CERT_NONE, warned."""
    import ssl

    certs = certs or {}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca = certs.get("ca")
    if ca:
        ctx.load_verify_locations(cafile=ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif verify:
        raise WifiError(
            "broker.tls is on but certs.ca is empty: the broker's certificate cannot be verified. Put the broker's "
            "CA certificate in secrets certs.ca, or set broker.tls_verify: false to connect without verification"
        )
    else:
        if log:
            log.warn("broker.tls_verify is false: TLS without verifying the broker")
        if hasattr(ctx, "check_hostname"):  # CPython refuses CERT_NONE while it is on
            ctx.check_hostname = False  # pyright: ignore[reportAttributeAccessIssue] - CPython-only
        ctx.verify_mode = ssl.CERT_NONE
    if certs.get("cert") and certs.get("key"):
        ctx.load_cert_chain(certs["cert"], certs["key"])
    return ctx
