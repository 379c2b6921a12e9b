# +CME ERROR numeric codes (3GPP TS 27.007 §9.2 plus SIMCom's list): the common ones. A table
# module read on demand: the engine imports it through core.errors.lookup when a +CME ERROR
# arrives, and drops it again (its strings do not stay resident).
_CME_ERRORS = (
    "0=phone failure\n"
    "3=operation not allowed\n"
    "4=operation not supported\n"
    "10=SIM not inserted\n"
    "11=SIM PIN required\n"
    "12=SIM PUK required\n"
    "13=SIM failure\n"
    "14=SIM busy\n"
    "15=SIM wrong\n"
    "16=incorrect password\n"
    "17=SIM PIN2 required\n"
    "18=SIM PUK2 required\n"
    "20=memory full\n"
    "23=text string too long\n"
    "30=no network service\n"
    "31=network timeout\n"
    "32=network not allowed - emergency calls only\n"
    "100=unknown\n"
    "103=illegal MS\n"
    "106=illegal ME\n"
    "107=GPRS services not allowed\n"
    "111=PLMN not allowed\n"
    "112=location area not allowed\n"
    "113=roaming not allowed in this location area\n"
    "132=service option not supported\n"
    "133=requested service option not subscribed\n"
    "134=service option temporarily out of order\n"
    "148=unspecified GPRS error\n"
    "149=PDP authentication failure\n"
)


def meaning(code):
    """The text of +CME ERROR <code>, or None when the table does not know it."""
    key = "%d=" % code
    i = 0 if _CME_ERRORS.startswith(key) else _CME_ERRORS.find("\n" + key)
    if i < 0:
        return None
    if i:
        i += 1
    i += len(key)
    return _CME_ERRORS[i : _CME_ERRORS.find("\n", i)]


def table():
    """{code: text} (host tools and tests)."""
    d = {}
    for ln in _CME_ERRORS.split("\n")[:-1]:
        k, v = ln.split("=", 1)
        d[int(k)] = v
    return d
