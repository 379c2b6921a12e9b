# The SIM7600's error and state texts (SIMCom SIM7500_SIM7600 Series AT Command Manual V3.00: ch.16 MQTT(S)
# §16.3.1, ch.10 SSL; 35 is from the A76XX manual, treated as possible). Data only, and not imported on the
# device: modem/code_texts.py reads a line from this module's file (.py or .mpy: the lines are stored verbatim in
# both) by its key with core/rows.py when an error has to be explained, so none of these strings is ever in the
# heap; without the file (a frozen image) the module is imported for the lookup and dropped again.
#
# One line per entry, "<table><code>=<text>", each after a newline (the key core/rows.py searches for):
#   E  CMQTT <err> 0..35: its meaning
#   N  CMQTT <err>: its name where it differs from the meaning in CamelCase (the names the firmware always gave)
#   H  CMQTT <err>: what a fleet engineer should do about it (codes with a known cause and fix)
#   L  +CMQTTCONNLOST: <idx>,<cause>: the cause
#   R  +CREG/+CGREG/+CEREG <stat>: the registration state
#   F  what to do about a module firmware that refuses the SSL settings (F0 and F1: one text in two lines)
#   G  registration failed: G0 denied (%s: the stats of CREG, CGREG, CEREG), G1 not registered in time
#   M  the messages of the bring-up's and the connect's rare failures (modem/code_texts.py msg: the bring-up's
#      steps, modem/bringup.py; the CMQTT client's, modem/cmqtt_rare.py; the recovery's, net/cellular_rare.py)
# A line is at most 190 bytes (core/rows.py reads 200 at a time; host_tests/mp/mp_cmqtt.py checks).
# get() gives a whole table (host tools and tests: modem.codes.CMQTT_ERRORS and the like).
TABLE = (
    """
E0=operation succeeded
E1=failed
E2=bad UTF-8 string
E3=sock connect fail
E4=sock create fail
E5=sock close fail
E6=message receive fail
E7=network open fail
E8=network close fail
E9=network not opened
E10=client index error
E11=no connection
""",
    """
E12=invalid parameter
E13=not supported operation
E14=client is busy
E15=require connection fail
E16=sock sending fail
E17=timeout
E18=topic is empty
E19=client is used
E20=client not acquired
E21=client not released
E22=length out of range
E23=network is opened
""",
    """
E24=packet fail
E25=DNS error
E26=socket is closed by server
E27=connection refused: unaccepted protocol version
E28=connection refused: identifier rejected
E29=connection refused: server unavailable
E30=connection refused: bad user name or password
E31=connection refused: not authorized
E32=handshake fail
E33=not set certificate
E34=open SSL session failed
E35=disconnect from server failed
""",
    """
N11=NoConnection
N14=ClientBusy
N17=CmqttTimeout
N19=ClientUsed
N20=ClientNotAcquired
N23=NetworkOpened
N32=HandshakeFail
N33=NotSetCertificate
N34=SslSessionFailed
""",
    """
H2=payload/topic is not valid UTF-8: set AT+CMQTTCFG="checkUTF8",<idx>,0 for binary payloads
H3=socket connect failed: broker host/port unreachable from the mobile network, or a firewall; check the tcp:// address and port
H6=message receive failed: the link dropped mid-message; reconnect
H9=network not opened: CMQTTSTART activates the PDP context; check registration and APN
H11=no connection: the MQTT session is down (CONNECT never completed or was lost); reconnect
H12=invalid parameter: check lengths and ranges (keepalive 1-64800, pub_timeout 60-180, address starts with tcp://)
""",
    """
H14=client is busy: a previous asynchronous CMQTT result or an incoming message was still in flight
H17=timeout: the broker did not answer in time (PUBACK/SUBACK/CONNACK); check the link and raise pub_timeout/optimeout
H19=client is used: a stale session from before a reset; DISC/REL/STOP then START again
H20=client not acquired: run AT+CMQTTACCQ after AT+CMQTTSTART before using the client
H21=client not released: run AT+CMQTTREL before AT+CMQTTSTOP/ACCQ
H23=network is opened: the MQTT service is still running from before an MCU reset; REL/STOP first
""",
    """
H25=DNS error: check the broker host name and the APN's DNS
H26=socket closed by the server: the broker dropped the session (policy, duplicate client id, or a protocol error)
H28=identifier rejected: the broker refused the client id (empty, too long, or not allowed by its policy)
H29=server unavailable: the broker is up but refuses service; retry later
H30=bad user name or password
H31=not authorized: check the device certificate/policy on the broker
""",
    """
H32=TLS handshake failed: wrong/truncated CA, client cert or key, SNI off for a cloud broker, or clock
H33=certificate not set: upload with AT+CCERTDOWN and set cacert/clientcert/clientkey in AT+CSSLCFG
H34=SSL session could not be opened: check sslversion/authmode and the certificate files
""",
    """
L1=socket closed passively
L2=socket reset
L3=network closed
""",
    """
R0=not registered, not searching
R1=registered, home network
R2=not registered, searching
R3=registration denied
R4=unknown
R5=registered, roaming
R6=registered for SMS only, home
R7=registered for SMS only, roaming
""",
    """
F0=this SIM7600 firmware cannot do MQTT over SSL (AT+CSSLCFG refused): upgrade the module firmware over its USB port
F1=with SIMCom's tool (e.g. LE11B03SIM7600A-H or newer), or use plain MQTT / the WiFi transport
G0=network registration denied (CREG %s, CGREG %s, CEREG %s): the SIM/plan is not allowed on this network; check the SIM is activated for data
G1=not registered after %d ms (CREG %s, CGREG %s, CEREG %s: %s); check antenna and coverage
""",
    """
M0=modem did not answer AT within %d ms (last: %s)
M1=SIM is locked (%s): needs a PUK or unlock on another phone
M2=SIM not ready after %d ms (state %s)
M3=SIM not usable: %s
M4=the SIM asks for a PIN and config cellular.sim_pin is empty
M5=the SIM still asks for a PIN after entering cellular.sim_pin
M6=SIM PIN refused: %s (check cellular.sim_pin)
M7=AT+CGAUTH refused for APN user %r: %s
M8=client id must be 1..%d bytes without '"'
M9=AT+CMQTTCFG="checkUTF8" refused (%s): this module firmware keeps its default; it may refuse non-UTF-8 payloads (error 2)
M10=server address %r must be 9..256 characters
M11=modem does not answer (%s): pressing its power key
""",
)


def get(name):
    """Table `name` (its letter) whole: a tuple for E and R (the text of code n at n), a dict
    (code -> text) for the others."""
    d = {}
    for c in TABLE:
        for ln in c.split("\n"):
            if ln[:1] == name:
                i = ln.find("=")
                d[int(ln[1:i])] = ln[i + 1 :]
    if name in "ER":
        return tuple(d[i] for i in range(len(d)))
    return d
