# Telelogger configuration: loading and validation (every key: telelogger/CONFIG.md).
#
# cfg = load("config.json", "secrets.json")   # defaults merged, validated, secrets under cfg["secrets"]
# validate(cfg) raises ConfigError naming the dotted key, what was expected and what was given --
# every error of the file at once (ConfigError.errors). Unknown keys are rejected (typo
# protection). Secrets are never printed: use redacted(cfg).
#
# RAM: the defaults and schema (telelogger/schema.py) and the checks (telelogger/configcheck.py)
# are imported for one validation and removed from sys.modules again; what stays is this small
# module. DEFAULTS, SCHEMA, SECRETS_DEFAULTS, SECRETS_SCHEMA, HMAC_KEY_MIN, PID_INTERVAL read
# through here come from schema.py (a fresh copy each time); redacted, get, warnings and SECRET_MASK
# from configview.py (for tools and the boot's report, imported per use).
import json

from telelogger.configerror import ConfigError  # noqa: F401 - config.ConfigError is the public name
from telelogger.tasks import unload as _unload


def __getattr__(name):
    if name in ("DEFAULTS", "SCHEMA", "SECRETS_DEFAULTS", "SECRETS_SCHEMA", "HMAC_KEY_MIN", "PID_INTERVAL"):
        from telelogger import schema as m
    elif name in ("redacted", "get", "warnings", "SECRET_MASK"):
        from telelogger import configview as m
    else:
        raise AttributeError(name)
    v = getattr(m, name)
    _unload(m.__name__[11:])
    return v


def validate(cfg, complete=True):
    """Checks a full or partial config (missing keys take defaults); returns the merged, normalised
    config (new dict). A "secrets" member, if present, is validated as a secrets file. complete
    (default): also require what a device needs (broker.host, certs.ca when TLS verifies)."""
    from telelogger import configcheck

    try:
        return configcheck.check(cfg, complete)
    finally:
        _unload("configcheck")
        _unload("schema")


def validate_secrets(sec):
    """A secrets dict alone -> merged with the defaults (raises ConfigError)."""
    from telelogger import configcheck

    try:
        errs = []
        out = configcheck.check_secrets(sec, errs)
        if errs:
            raise ConfigError.of(errs)
        return out
    finally:
        _unload("configcheck")
        _unload("schema")


def _read_json(path, what):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(what, "a readable JSON file at %s" % path, "error %s" % (e.args[0] if e.args else e))
    except UnicodeError:  # flash corruption or a binary file: not UTF-8 text
        raise ConfigError(what, "UTF-8 JSON text in %s" % path, "bytes that are not UTF-8")
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError(what, "valid JSON in %s" % path, "a syntax error (%s)" % e)


def load(cfg_path, secrets_path=None):
    """Reads the config (and the separate secrets file, whose keys end up under cfg["secrets"]),
    merges defaults, validates. A missing secrets file is an error only when a path is given."""
    cfg = _read_json(cfg_path, "(config file)")
    if not isinstance(cfg, dict):
        raise ConfigError("(config file)", "a JSON object", "a JSON %s" % type(cfg).__name__)
    if "secrets" in cfg:
        raise ConfigError("secrets", "secrets in their own file (secrets.json), not in the config", "a \"secrets\" member")
    if secrets_path is not None:
        cfg = dict(cfg)
        cfg["secrets"] = _read_json(secrets_path, "(secrets file)")
    cfg = validate(cfg)
    cfg["config_path"] = cfg_path  # where a remote config_set writes (telelogger/cfgcmd.py)
    return cfg
