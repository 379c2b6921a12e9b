# telelogger.config on both runtimes: defaults, validation errors that name the key, secrets.
import json
import os

from mptest import raises
from telelogger import config as C


def _err(cfg):
    return raises(C.ConfigError, C.validate, cfg)


def test_defaults_validate_and_match_official_tiers():
    c = C.validate({})
    p = c["obd"]["pids"]
    for pid in ("0D", "0C", "11", "04"):
        assert p[pid] == 1000
    assert p["0A"] == p["0E"] == 3000
    assert p["05"] == p["0F"] == 6000
    for pid in ("2F", "10", "46", "33", "31"):
        assert p[pid] > 1000
    assert c["secrets"]["hmac_key"] == ""
    assert C.validate(c) == c  # idempotent


def test_error_names_dotted_key_expected_and_got():
    e = _err({"queue": {"max_bytes": "big"}})
    assert str(e) == 'queue.max_bytes: expected an integer >= 4096, got "big"'
    assert e.key == "queue.max_bytes"
    e = _err({"broker": {"port": 70000}})
    assert e.key == "broker.port" and "65535" in str(e) and "70000" in str(e)
    e = _err({"transport": "lte"})
    assert e.key == "transport" and "cellular|wifi" in str(e)
    e = _err({"broker": {"tls": "yes"}})
    assert e.key == "broker.tls" and "true or false" in str(e)


def test_unknown_keys_rejected():
    e = _err({"broker": {"hots": "x"}})
    assert e.key == "broker.hots" and "unknown key" in str(e)
    e = _err({"encodng": "json"})
    assert e.key == "encodng"


def test_bool_is_not_an_integer():
    e = _err({"broker": {"port": True}})
    assert e.key == "broker.port"
    e = _err({"standby": {"voltage_off": False}})
    assert e.key == "standby.voltage_off"


def test_pids_validated_and_normalised():
    c = C.validate({"obd": {"pids": {"0c": 2000, "0D": 1000}}})
    assert c["obd"]["pids"] == {"0C": 2000, "0D": 1000}  # replaces the default set
    assert _err({"obd": {"pids": {"XY": 1000}}}).key == "obd.pids.XY"
    assert _err({"obd": {"pids": {"0C": 5}}}).key == "obd.pids.0C"
    assert _err({"obd": {"pids": {"0c": 1000, "0C": 1000}}}).key in ("obd.pids.0c", "obd.pids.0C")
    assert _err({"obd": {"pids": [1]}}).key == "obd.pids"


def test_cross_checks():
    assert _err({"queue": {"max_bytes": 8192, "segment_bytes": 8192}}).key == "queue.segment_bytes"
    assert _err({"standby": {"voltage_off": 12.5, "voltage_wake": 12.0}}).key == "standby.voltage_wake"
    assert _err({"transport": "wifi"}).key == "secrets.wifi_ssid"
    c = C.validate({"transport": "wifi", "secrets": {"wifi_ssid": "car"}})
    assert c["transport"] == "wifi"


def test_floats_accept_ints():
    c = C.validate({"standby": {"voltage_off": 12, "voltage_wake": 14}})
    assert c["standby"]["voltage_wake"] == 14.0 and isinstance(c["standby"]["voltage_wake"], float)


def test_secret_values_never_in_errors():
    e = _err({"secrets": {"hmac_key": "tooShortSecret"}})
    assert e.key == "secrets.hmac_key" and "tooShortSecret" not in str(e)
    e = _err({"secrets": {"mqtt_pass": 12345}})
    assert "12345" not in str(e)
    assert _err({"secrets": {"certs": {"ca": 1}}}).key == "secrets.certs.ca"
    assert _err({"secrets": {"token": "x"}}).key == "secrets.token"


def test_redacted_hides_secrets_only():
    c = C.validate({"broker": {"host": "mqtt.example.com"}, "secrets": {"mqtt_pass": "hunter2", "hmac_key": "0123456789abcdef0"}})
    r = C.redacted(c)
    assert r["secrets"]["mqtt_pass"] == "***" and r["secrets"]["hmac_key"] == "***"
    assert r["secrets"]["apn_user"] == ""
    assert r["broker"]["host"] == "mqtt.example.com"
    assert "hunter2" not in json.dumps(r)
    assert c["secrets"]["mqtt_pass"] == "hunter2"  # original untouched


def _write(path, obj):
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))


def test_load_files():
    base = "/tmp/mpcfg-" + "".join("%02x" % b for b in os.urandom(5))
    cp, sp = base + ".json", base + ".secrets.json"
    try:
        _write(cp, {"device_id": "CAR1", "encoding": "json"})
        _write(sp, {"mqtt_user": "u", "mqtt_pass": "p"})
        c = C.load(cp, sp)
        assert c["device_id"] == "CAR1" and c["encoding"] == "json"
        assert c["secrets"]["mqtt_user"] == "u"
        assert C.load(cp)["secrets"]["mqtt_pass"] == ""
        _write(cp, '{"device_id": "CAR1"')
        e = raises(C.ConfigError, C.load, cp)
        assert "JSON" in str(e)
        _write(cp, {"secrets": {"mqtt_pass": "p"}})
        assert raises(C.ConfigError, C.load, cp).key == "secrets"
        e = raises(C.ConfigError, C.load, base + ".missing")
        assert "readable" in str(e)
    finally:
        for p in (cp, sp):
            try:
                os.remove(p)
            except OSError:
                pass


def test_example_files_are_valid():
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    fw = here + "/../../firmware/"
    c = C.load(fw + "config.example.json", fw + "secrets.example.json")
    assert c["broker"]["host"]
