# The one exception of the configuration (raised by telelogger.configcheck, caught as
# telelogger.config.ConfigError): its own small module so the checks can raise it without
# importing config.py, which imports them.


class ConfigError(ValueError):
    """`key`: dotted key, `expected`: what is allowed, `got`: what was given (already rendered).
    `errors`: every error found ([self] for one); key/expected/got are the first one's; the
    message has one line per error."""

    def __init__(self, key, expected, got, errors=None):
        one = "%s: expected %s, got %s" % (key, expected, got)
        if errors and len(errors) > 1:
            one = "%d errors:\n%s" % (len(errors), "\n".join([str(e) for e in errors]))
        super().__init__(one)
        self.key = key
        self.expected = expected
        self.got = got
        self.errors = errors or [self]

    @staticmethod
    def of(errors):
        """One ConfigError for a list of them (the list itself when it has one)."""
        if len(errors) == 1:
            return errors[0]
        e = errors[0]
        return ConfigError(e.key, e.expected, e.got, errors)
