#!/usr/bin/env python3
"""Check a config (and its secrets) as the device and `make deploy` will, without a board.

    python scripts/validate.py --config my-config.json [--secrets my-secrets.json]
    make validate CONFIG=my-config.json SECRETS=my-secrets.json

Runs the firmware's own validator (telelogger.config) and the deploy's certificate check, and
prints every error of the files at once (the key, what was given, what is expected), then the
warnings (things that may be intended, e.g. TLS on port 1883). Exit 0 when valid, 2 when not.
No secret value of the files is printed (deploy.secret_values: masked as ***), even in an error.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "scripts")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def errors_of(e):
    """The list of errors a ConfigError carries (one, or all of a file's when the validator collects them)."""
    many = getattr(e, "errors", None)
    if many:
        return [str(x) for x in many]
    return [str(e)]


def check(config, secrets=None):
    """-> (errors, warnings, cfg) for the pair of files."""
    from deploy import DeployError, cert_files

    from telelogger import config as tconfig

    for p in (config, secrets):
        if p is not None and not os.path.exists(p):
            return ["file not found: %s" % p], [], None
    errors, cfg = [], None
    try:
        cfg = tconfig.load(config, secrets)
    except tconfig.ConfigError as e:
        errors = errors_of(e)
    except (OSError, ValueError) as e:
        errors = [str(e)]
    if secrets:  # the certificate files too, even when the config itself was refused: all at once
        try:
            import json

            with open(secrets) as f:
                raw = json.load(f)
            cert_files(cfg or {"secrets": raw if isinstance(raw, dict) else {}}, secrets)
        except DeployError as e:
            errors.append(str(e))
        except (OSError, ValueError):
            pass  # unreadable secrets: the validator said so above
    if errors:
        return errors, [], None
    warn = getattr(tconfig, "warnings", None)
    warnings = list(warn(cfg)) if warn else []
    return errors, warnings, cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="config JSON")
    ap.add_argument("--secrets", help="secrets JSON")
    a = ap.parse_args(argv)
    from deploy import mask, secret_values

    hide = secret_values(a.config, a.secrets)  # no secret value in anything printed, valid or not
    errors, warnings, cfg = check(a.config, a.secrets)
    name = a.config + (" + " + a.secrets if a.secrets else "")
    for w in warnings:
        print("validate: warning: %s" % mask(w, hide))
    if errors:
        print("validate: %s: %d error%s" % (name, len(errors), "" if len(errors) == 1 else "s"), file=sys.stderr)
        for e in errors:
            print("  %s" % mask(e, hide), file=sys.stderr)
        return 2
    print("validate: %s valid (transport %s, broker %s)" % (name, cfg.get("transport"),
                                                           (cfg.get("broker") or {}).get("host")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
