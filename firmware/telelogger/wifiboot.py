# Boot only, transport "wifi": the net.wifi.WifiPublisher from the validated config, its TLS context.
# telelogger.assembly calls publisher() through core.errors.lookup (imported for the call and
# forgotten), so a cellular boot never loads this module and never interns its names (the WiFi keys
# and keywords below would otherwise be interned names for good on every cellular device).
from core.errors import drop


def publisher(board, cfg, clock, log=None):
    """A net.wifi.WifiPublisher from the flattened config (secrets at the top level: assembly's
    flat_config): the board provides the station interface (board.wlan(): network.WLAN(STA_IF) on
    the ESP32, None on the host, whose own networking is up); the publisher joins it with secrets
    wifi_ssid/wifi_password, waiting at most wifi_timeout_ms, and says which network it could not
    join."""
    from net.wifi import WifiPublisher

    b = cfg.get("broker") or {}
    tls = bool(b.get("tls"))
    ssid = cfg.get("wifi_ssid")
    wlan = board.wlan() if hasattr(board, "wlan") else None
    if wlan is not None and not ssid:
        raise ValueError("transport 'wifi' needs secrets wifi_ssid (and wifi_password)")
    return WifiPublisher(
        cfg.get("device_id", "freematics"),
        b.get("host", "localhost"),
        port=b.get("port", 8883 if tls else 1883),
        user=cfg.get("mqtt_user") or None,
        password=cfg.get("mqtt_pass") or None,
        keepalive=b.get("keepalive", 60),
        ssl=_tls_context(cfg.get("certs") or {}, b.get("tls_verify", True), log) if tls else None,
        clean=b.get("clean_session", True),
        wlan=wlan,
        ssid=ssid,
        wifi_password=cfg.get("wifi_password"),
        clock=clock,
        log=log,
    )


def _tls_context(certs, verify=True, log=None):
    """ssl.SSLContext for umqtt over WiFi (net.wifi_tls, boot only: dropped after use): the broker
    verified against certs.ca, or refused unless broker.tls_verify is false."""
    try:
        from net.wifi_tls import tls_context

        return tls_context(certs, verify=verify, log=log)
    finally:
        drop("net.wifi_tls")
