# telelogger.config on both runtimes: defaults, validation errors that name the key, secrets.
import json
import os

from mptest import raises
from telelogger import config as C


def _v(cfg):
    """validate() without the device's requirements (broker.host, certs.ca): a partial config."""
    return C.validate(cfg, False)


def _err(cfg, complete=False):
    return raises(C.ConfigError, C.validate, cfg, complete)


# what a device needs besides the defaults
GOOD_KEY = "k8Pq2vXz7LmN4rTb9WcY3hJd6FgS1aQe"
READY = {"broker": {"host": "mqtt.my-fleet.net"},
         "secrets": {"certs": {"ca": "certs/ca.pem"}, "hmac_key": GOOD_KEY}}


def _ready(**over):
    c = json.loads(json.dumps(READY))
    for k in over:
        if isinstance(over[k], dict) and isinstance(c.get(k), dict):
            c[k].update(over[k])
        else:
            c[k] = over[k]
    return c


def test_defaults_validate_and_match_official_tiers():
    c = _v({})
    p = c["obd"]["pids"]
    for pid in ("0D", "0C", "11", "04"):
        assert p[pid] == 1000
    assert p["0A"] == p["0E"] == 3000
    assert p["05"] == p["0F"] == 6000
    for pid in ("2F", "10", "46", "33", "31"):
        assert p[pid] > 1000
    assert c["secrets"]["hmac_key"] == ""
    assert _v(c) == c  # idempotent


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
    c = _v({"obd": {"pids": {"0c": 2000, "0D": 1000}}})
    assert c["obd"]["pids"] == {"0C": 2000, "0D": 1000}  # replaces the default set
    assert _err({"obd": {"pids": {"XY": 1000}}}).key == "obd.pids.XY"
    assert _err({"obd": {"pids": {"0C": 5}}}).key == "obd.pids.0C"
    assert _err({"obd": {"pids": {"0c": 1000, "0C": 1000}}}).key in ("obd.pids.0c", "obd.pids.0C")
    assert _err({"obd": {"pids": [1]}}).key == "obd.pids"


def test_cross_checks():
    assert _err({"queue": {"max_bytes": 8192, "segment_bytes": 8192}}).key == "queue.segment_bytes"
    assert _err({"standby": {"voltage_off": 12.5, "voltage_wake": 12.0}}).key == "standby.voltage_wake"
    assert _err({"transport": "wifi"}).key == "secrets.wifi_ssid"
    c = _v({"transport": "wifi", "secrets": {"wifi_ssid": "car"}})
    assert c["transport"] == "wifi"


def test_floats_accept_ints():
    c = _v({"standby": {"voltage_off": 12, "voltage_wake": 14}})
    assert c["standby"]["voltage_wake"] == 14.0 and isinstance(c["standby"]["voltage_wake"], float)


def test_secret_values_never_in_errors():
    e = _err({"secrets": {"hmac_key": "tooShortSecret"}})
    assert e.key == "secrets.hmac_key" and "tooShortSecret" not in str(e)
    e = _err({"secrets": {"mqtt_pass": 'pa"ss'}})
    assert e.key == "secrets.mqtt_pass" and 'pa"ss' not in str(e)
    e = _err({"secrets": {"mqtt_pass": 12345}})
    assert "12345" not in str(e)
    assert _err({"secrets": {"certs": {"ca": 1}}}).key == "secrets.certs.ca"
    assert _err({"secrets": {"token": "x"}}).key == "secrets.token"


def test_redacted_hides_secrets_only():
    c = _v({"broker": {"host": "mqtt.my-fleet.net"}, "secrets": {"mqtt_pass": "hunter2", "hmac_key": GOOD_KEY}})
    r = C.redacted(c)
    assert r["secrets"]["mqtt_pass"] == "***" and r["secrets"]["hmac_key"] == "***"
    assert r["secrets"]["apn_user"] == ""
    assert r["broker"]["host"] == "mqtt.my-fleet.net"
    assert "hunter2" not in json.dumps(r)
    assert c["secrets"]["mqtt_pass"] == "hunter2"  # original untouched


def _write(path, obj):
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))


def test_load_files():
    base = "/tmp/mpcfg-" + "".join("%02x" % b for b in os.urandom(5))
    cp, sp = base + ".json", base + ".secrets.json"
    try:
        _write(cp, {"device_id": "CAR1", "encoding": "json", "broker": {"host": "mqtt.my-fleet.net"}})
        _write(sp, {"mqtt_user": "u", "mqtt_pass": "p", "certs": {"ca": "ca.pem"}})
        c = C.load(cp, sp)
        assert c["device_id"] == "CAR1" and c["encoding"] == "json"
        assert c["secrets"]["mqtt_user"] == "u"
        e = raises(C.ConfigError, C.load, cp)  # load() is complete: without the secrets no CA
        assert [x.key for x in e.errors] == ["secrets.certs.ca"]
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


def test_example_files_are_refused_for_their_placeholders_only():
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    fw = here + "/../../firmware/"
    e = raises(C.ConfigError, C.load, fw + "config.example.json", fw + "secrets.example.json")
    keys = sorted([x.key for x in e.errors])
    assert set(keys) <= {"broker.host", "secrets.hmac_key"} and "secrets.hmac_key" in keys, str(e)
    with open(fw + "config.example.json") as f:
        c = json.load(f)
    with open(fw + "secrets.example.json") as f:
        c["secrets"] = json.load(f)
    c["broker"]["host"] = "mqtt.my-fleet.net"
    c["secrets"]["hmac_key"] = GOOD_KEY
    assert C.validate(c)["broker"]["host"] == "mqtt.my-fleet.net"  # nothing else is wrong with them


def test_ready_config_validates_complete():
    c = C.validate(_ready())
    assert c["broker"]["tls_verify"] is True and c["secrets"]["certs"]["ca"] == "certs/ca.pem"
    assert C.validate(c) == c


def test_every_error_reported_at_once():
    e = _err({"broker": {"port": 0, "hots": 1}, "queue": {"max_bytes": "big"}, "transport": "lte",
              "secrets": {"mqtt_user": 'car"1'}}, True)
    keys = [x.key for x in e.errors]
    for k in ("broker.port", "broker.hots", "queue.max_bytes", "transport", "secrets.mqtt_user", "broker.host"):
        assert k in keys, (k, keys)
    assert str(e).startswith("%d errors:" % len(keys))
    for x in e.errors:
        assert str(x) in str(e)  # one line each
    assert e.key == e.errors[0].key


def test_quotes_and_control_characters_refused_in_at_strings():
    for key, c in (
        ("cellular.apn", {"cellular": {"apn": 'inter"net'}}),
        ("cellular.apn", {"cellular": {"apn": "internet\r\nAT+CFUN=0"}}),
        ("secrets.apn_user", {"secrets": {"apn_user": "a\tb"}}),
        ("secrets.apn_pass", {"secrets": {"apn_pass": 'x"'}}),
        ("secrets.mqtt_user", {"secrets": {"mqtt_user": 'car"1'}}),
        ("secrets.mqtt_pass", {"secrets": {"mqtt_pass": "p\nAT"}}),
        ("secrets.mqtt_pass", {"secrets": {"mqtt_pass": "p\x7f"}}),
        ("cellular.sim_pin", {"cellular": {"sim_pin": '12"4'}}),
    ):
        e = _err(c)
        assert e.key == key, (key, e.key)
        assert "AT command" in str(e) or key == "cellular.sim_pin", str(e)
    ok = _v({"cellular": {"apn": "internet.t-d1.de"}, "secrets": {"mqtt_pass": "p@ss w0rd!;,'"}})
    assert ok["secrets"]["mqtt_pass"] == "p@ss w0rd!;,'"


def test_hmac_key_needs_entropy_when_commands_are_on():
    for key in ("replace-with-32-random-characters", "0123456789abcdef0", "a" * 40, "ab" * 20):
        e = _err({"secrets": {"hmac_key": key}})
        assert e.key == "secrets.hmac_key" and key not in str(e), key
    assert "placeholder" in str(_err({"secrets": {"hmac_key": "replace-with-32-random-characters"}}))
    assert _v({"secrets": {"hmac_key": GOOD_KEY}})["secrets"]["hmac_key"] == GOOD_KEY
    # commands off: the key is not used, any string passes; no key: commands are off
    assert _v({"commands": {"enabled": False}, "secrets": {"hmac_key": "short"}})
    assert _v({"secrets": {"hmac_key": ""}})


def test_broker_host_required_and_not_a_placeholder():
    e = _err(_ready(broker={"host": ""}), True)
    assert e.key == "broker.host" and "required" in str(e)
    for h in ("mqtt.example.com", "example.org", "MQTT.EXAMPLE.NET."):
        e = _err(_ready(broker={"host": h}), True)
        assert e.key == "broker.host" and "placeholder" in str(e), h
        assert _err({"broker": {"host": h}}).key == "broker.host"  # refused in any mode
    assert _v({})["broker"]["host"] == ""  # partial mode: not required


def test_tls_verify_needs_a_ca():
    c = _ready()
    c["secrets"]["certs"]["ca"] = ""
    e = _err(c, True)
    assert e.key == "secrets.certs.ca" and "tls_verify" in str(e)
    c["broker"]["tls_verify"] = False  # explicitly unverified
    assert C.validate(c)["broker"]["tls_verify"] is False
    c["broker"] = {"host": "mqtt.my-fleet.net", "tls": False, "port": 1883}
    assert C.validate(c)["broker"]["tls"] is False
    assert _err({"broker": {"tls_verify": "yes"}}).key == "broker.tls_verify"


def test_client_certificate_needs_its_key():
    assert _err({"secrets": {"certs": {"cert": "certs/dev.pem"}}}).key == "secrets.certs.key"
    assert _err({"secrets": {"certs": {"key": "certs/dev.key"}}}).key == "secrets.certs.cert"
    assert _v({"secrets": {"certs": {"cert": "c.pem", "key": "c.key"}}})


def test_pids_must_be_in_the_pid_table():
    for pid in ("E7", "20", "01"):
        e = _err({"obd": {"pids": {pid: 1000}}})
        assert e.key == "obd.pids." + pid and "obdii/pids.py" in str(e), str(e)
    e = _err({"obd": {"pids": {"E7": 1000, "20": 1000, "0C": 5}}})
    assert sorted([x.key for x in e.errors]) == ["obd.pids.0C", "obd.pids.20", "obd.pids.E7"]


def test_validation_modules_leave_nothing_resident():
    import sys

    _v({})
    raises(C.ConfigError, C.validate, {"transport": "lte"})
    for m in ("telelogger.configcheck", "telelogger.schema"):
        assert m not in sys.modules, m
    import telelogger

    assert "configcheck" not in telelogger.__dict__ and "schema" not in telelogger.__dict__
    assert C.DEFAULTS["broker"]["port"] == 8883 and "telelogger.schema" not in sys.modules


# ---- keys the loop reads (intervals.record_ms/reconnect_*/wdt_feed_ms, batch.max_bytes, standby.flush_s)
_LOOP_ATTRS = ("record_ms", "backoff_min_ms", "backoff_max_ms", "wdt_ms", "payload_max", "flush_ms")


def _loop(cfg):
    from fakepub import FakePublisher
    from telelogger.loop import Telelogger

    # codec: any object (the encoder is not needed here and would not fit the 64K heap as well)
    t = Telelogger(cfg, FakePublisher(), None, device_id="CFGTEST", codec=C)
    return [getattr(t, a) for a in _LOOP_ATTRS]


def test_loop_key_defaults_are_the_loops_own():
    c = _v({})
    assert c["intervals"]["record_ms"] is None  # derived: the shortest PID interval
    assert c["intervals"]["reconnect_min_ms"] == 1000 and c["intervals"]["reconnect_max_ms"] == 60000
    assert c["intervals"]["wdt_feed_ms"] == 1000
    assert c["batch"]["max_bytes"] == 8192 and c["standby"]["flush_s"] == 30
    # a Telelogger given the validated defaults behaves as one given no config at all
    assert _loop(c) == _loop({"obd": {"pids": c["obd"]["pids"]}})
    fast = {"obd": {"pids": {"0C": 250, "0D": 500}}}
    assert _loop(_v(fast)) == _loop(fast)
    assert _loop(_v(fast))[0] == 250


def test_loop_keys_reach_the_loop():
    c = _v({"intervals": {"record_ms": 2000, "reconnect_min_ms": 500, "reconnect_max_ms": 120000,
                                  "wdt_feed_ms": 5000},
                    "batch": {"max_bytes": 4096}, "standby": {"flush_s": 0}})
    assert _loop(c) == [2000, 500, 120000, 5000, 4096, 0]
    assert _v(c) == c  # idempotent, null record_ms included
    assert _v({"intervals": {"record_ms": None}})["intervals"]["record_ms"] is None


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
