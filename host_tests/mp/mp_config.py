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


# ---- keys the loop reads (intervals.record_ms/reconnect_*/wdt_feed_ms, batch.max_bytes, standby.flush_s)
_LOOP_ATTRS = ("record_ms", "backoff_min_ms", "backoff_max_ms", "wdt_ms", "payload_max", "flush_ms")


def _loop(cfg):
    from net.publisher import FakePublisher
    from telelogger.loop import Telelogger

    # codec: any object (the encoder is not needed here and would not fit the 64K heap as well)
    t = Telelogger(cfg, FakePublisher(), None, device_id="CFGTEST", codec=C)
    return [getattr(t, a) for a in _LOOP_ATTRS]


def test_loop_key_defaults_are_the_loops_own():
    c = C.validate({})
    assert c["intervals"]["record_ms"] is None  # derived: the shortest PID interval
    assert c["intervals"]["reconnect_min_ms"] == 1000 and c["intervals"]["reconnect_max_ms"] == 60000
    assert c["intervals"]["wdt_feed_ms"] == 1000
    assert c["batch"]["max_bytes"] == 8192 and c["standby"]["flush_s"] == 30
    # a Telelogger given the validated defaults behaves as one given no config at all
    assert _loop(c) == _loop({"obd": {"pids": c["obd"]["pids"]}})
    fast = {"obd": {"pids": {"0C": 250, "0D": 500}}}
    assert _loop(C.validate(fast)) == _loop(fast)
    assert _loop(C.validate(fast))[0] == 250


def test_loop_keys_reach_the_loop():
    c = C.validate({"intervals": {"record_ms": 2000, "reconnect_min_ms": 500, "reconnect_max_ms": 120000,
                                  "wdt_feed_ms": 5000},
                    "batch": {"max_bytes": 4096}, "standby": {"flush_s": 0}})
    assert _loop(c) == [2000, 500, 120000, 5000, 4096, 0]
    assert C.validate(c) == c  # idempotent, null record_ms included
    assert C.validate({"intervals": {"record_ms": None}})["intervals"]["record_ms"] is None


def test_loop_keys_validated():
    for cfg, key in (
        ({"intervals": {"record_ms": 50}}, "intervals.record_ms"),
        ({"intervals": {"record_ms": "1s"}}, "intervals.record_ms"),
        ({"intervals": {"record_ms": True}}, "intervals.record_ms"),
        ({"intervals": {"reconnect_min_ms": 0}}, "intervals.reconnect_min_ms"),
        ({"intervals": {"reconnect_max_ms": 10 ** 8}}, "intervals.reconnect_max_ms"),
        ({"intervals": {"reconnect_min_ms": 5000, "reconnect_max_ms": 2000}}, "intervals.reconnect_max_ms"),
        ({"intervals": {"wdt_feed_ms": 60000}}, "intervals.wdt_feed_ms"),
        ({"intervals": {"wdt_feed_ms": None}}, "intervals.wdt_feed_ms"),
        ({"batch": {"max_bytes": 20000}}, "batch.max_bytes"),
        ({"batch": {"max_bytes": 100}}, "batch.max_bytes"),
        ({"standby": {"flush_s": -1}}, "standby.flush_s"),
        ({"standby": {"flush_s": 1.5}}, "standby.flush_s"),
        ({"intervals": {"record_msec": 1000}}, "intervals.record_msec"),
    ):
        e = _err(cfg)
        assert e.key == key, (cfg, e.key)
    e = _err({"intervals": {"record_ms": 50}})
    assert "or null" in str(e) and "50" in str(e)
    e = _err({"intervals": {"reconnect_min_ms": 5000, "reconnect_max_ms": 2000}})
    assert "reconnect_min_ms (5000)" in str(e) and "2000" in str(e)
