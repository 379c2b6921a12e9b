"""The doctor's own SIM7600 facts, written from the SIMCom SIM7500_SIM7600 AT Command Manual V3.00 (ch.16 MQTT,
§16.3.1 error codes, §16.3.2 URCs, ch.10 SSL), 3GPP TS 27.007 §9.2 (+CME ERROR) and the seed thread.

The doctor judges the firmware's logs, so it does not read the firmware's tables (firmware/modem/codes.py): the
two are compared by host_tests/test_doctor.py, and a disagreement is a finding about one of them.

Every code has a KIND: who has to act.
  host    - a mistake of the host (application or its configuration): the user must fix it;
  network - the network or the broker refused or went away: it happened *to* the device;
  module  - the module refused (firmware without the feature, a transient internal state).
"""

HOST, NETWORK, MODULE, INFO = "host", "network", "module", "info"

# CMQTT <err> (manual §16.3.1; 35 from the A76XX manual): code|kind|meaning|cause|fix
_CMQTT = """\
0|info|operation succeeded|the operation succeeded|nothing to do
1|module|failed|the module reports a generic failure of the MQTT operation (no more specific code)|retry once; if it repeats, tear the client down (DISC, REL, STOP) and start again (START, ACCQ, CONNECT)
2|host|bad UTF-8 string|the topic or payload is not valid UTF-8 while the module checks UTF-8 (AT+CMQTTCFG "checkUTF8" is 1 by default), e.g. a binary payload|for binary payloads send AT+CMQTTCFG="checkUTF8",<idx>,0 after ACCQ and before CONNECT; otherwise send UTF-8 text
3|network|sock connect fail|the TCP connection to the broker could not be made: the host/port is unreachable from the mobile network, the broker is down, or the APN/firewall blocks the port|check the tcp://host:port in AT+CMQTTCONNECT and that the broker listens there from the internet; some APNs block 1883/8883 - try another port or APN; retry with a backoff
4|module|sock create fail|the module could not create a socket: the PDP context is not active or all sockets are in use|check that AT+CMQTTSTART answered +CMQTTSTART: 0 (PDP active) and release clients/sockets you no longer use; restart the service (STOP/START)
5|module|sock close fail|closing the socket failed (usually it was already gone)|ignore it during cleanup and go on with REL/STOP; reset the module if the next START fails
6|network|message receive fail|the link dropped while a message was being received|reconnect (DISC/REL as needed, then ACCQ/CONNECT) and resubscribe
7|network|network open fail|the module could not activate the PDP context for the MQTT service: not registered, a wrong APN, wrong APN credentials (AT+CGAUTH) or no data on the SIM's plan|check AT+CGREG?/AT+CEREG? shows 1 (home) or 5 (roaming), the APN in AT+CGDCONT=1,"IP","<apn>" and AT+CGAUTH, and that the SIM has data; then AT+CMQTTSTART again
8|module|network close fail|deactivating the PDP context failed|ignore it at shutdown; if the next AT+CMQTTSTART fails, reset the module
9|host|network not opened|an MQTT command was sent while the MQTT service/PDP context was not up: AT+CMQTTSTART was not sent, did not answer +CMQTTSTART: 0, or the network went away (+CMQTTNONET)|send AT+CMQTTSTART and wait for +CMQTTSTART: 0 before ACCQ/CONNECT; after +CMQTTNONET run AT+CMQTTSTOP then AT+CMQTTSTART
10|host|client index error|the client index is not 0 or 1 (the module has two clients)|use client index 0 or 1 in every CMQTT command
11|host|no connection|the MQTT client is not connected: CONNECT never completed, failed, or the session was lost (CONNLOST/NONET)|wait for +CMQTTCONNECT: <idx>,0 before any SUB/TOPIC/PUB, track +CMQTTCONNLOST/+CMQTTNONET and reconnect before publishing
12|host|invalid parameter|a parameter is out of range: keepalive 1-64800, pub_timeout 60-180, qos 0-2, clean_session 0/1, topic length 1-1024, payload 1-10240, or a server address that does not start with tcp:// (9-256 characters)|compare every parameter with the command's AT+CMQTTxxx=? ranges; the server address is "tcp://host:port" even for TLS
13|module|not supported operation|this module firmware does not support the operation or this combination of parameters|check the command's =? answer and the firmware (AT+CGMR); avoid the operation or upgrade the firmware
14|host|client is busy|a CMQTT command was sent while a previous asynchronous operation (its +CMQTT...: <idx>,<err> result) or an incoming message (+CMQTTRXSTART .. +CMQTTRXEND) was still in flight|wait for each command's result URC and drain incoming messages up to +CMQTTRXEND before the next CMQTT command
15|network|require connection fail|the TCP (and TLS) link came up but the MQTT CONNECT exchange with the broker failed|check the broker address and its logs, the TLS settings and credentials; retry with a backoff
16|network|sock sending fail|sending on the socket failed: the link dropped|reconnect and send again
17|network|timeout|the broker did not answer in time (CONNACK/PUBACK/SUBACK within pub_timeout or optimeout)|check the link quality (AT+CSQ) and the broker; raise pub_timeout (up to 180) or AT+CMQTTCFG "optimeout"; retry
18|host|topic is empty|PUB/SUB without a topic: AT+CMQTTTOPIC/AT+CMQTTSUBTOPIC was not sent first - the module clears topic and payload after every CMQTTPUB|send AT+CMQTTTOPIC (and AT+CMQTTPAYLOAD) again before every AT+CMQTTPUB
19|host|client is used|the client is still acquired or connected from before: an MCU reset without a module reset left the old session up|at init run AT+CMQTTDISC=<idx>,120, AT+CMQTTREL=<idx>, AT+CMQTTSTOP (ignore their errors), then START and ACCQ again
20|host|client not acquired|a CMQTT command used a client that was never acquired|send AT+CMQTTACCQ=<idx>,"<client id>"[,<server_type>] after AT+CMQTTSTART and before CONNECT
21|host|client not released|STOP or ACCQ was sent while a client was still acquired|send AT+CMQTTREL=<idx> (after DISC) before AT+CMQTTSTOP or a new ACCQ
22|host|length out of range|a declared length is outside the allowed range: topic 1-1024 bytes, payload 1-10240 bytes, at most 5120 bytes of cached subscription topics|shorten the topic/payload or split the message; declare the length in bytes (len(data.encode()))
23|host|network is opened|AT+CMQTTSTART was sent while the MQTT service was already running (an MCU reset without a module reset)|treat 23 at START as "already started", or run AT+CMQTTREL=<idx> and AT+CMQTTSTOP first, then START
24|network|packet fail|the module could not build or parse an MQTT packet: a malformed or unexpected packet from the broker, or a protocol mismatch|use MQTT 3.1.1 (AT+CMQTTACCQ=<idx>,"<id>",<type>,4), check the broker's logs; reconnect
25|network|DNS error|the broker's host name could not be resolved: a typo in the host or the APN's DNS failing|check the host name (resolve it elsewhere, or AT+CDNSGIP="<host>" on the module); try the broker's IP or another APN
26|network|socket is closed by server|the broker closed the connection: its policy refused the client, another device connected with the same client id, it wants TLS, or it saw a protocol error|read the broker's log; use a unique client id per device; match TLS/port to the broker's listener
27|host|connection refused: unaccepted protocol version|the broker refuses the MQTT protocol version the module sent (3.1 when ACCQ has no version)|pass mqtt_version 4 (MQTT 3.1.1): AT+CMQTTACCQ=<idx>,"<id>",<server_type>,4
28|host|connection refused: identifier rejected|the broker refused the client id (empty, too long, or not allowed by its policy)|use a unique client id the broker allows (AWS IoT: the thing name allowed by the policy's iot:Connect)
29|network|connection refused: server unavailable|the broker is up but refuses service for now|retry later with a backoff; check the broker's health
30|host|connection refused: bad user name or password|the broker refused the user name/password sent in AT+CMQTTCONNECT (the doctor never prints them)|check mqtt_user/mqtt_pass against the broker's accounts (no quotes or control characters in them)
31|host|connection refused: not authorized|the broker refused this client: its ACL/policy does not allow it (AWS IoT: certificate not active, no policy attached, or iot:Connect not allowing this client id)|check the broker's ACL/policy for this client id and credentials/certificate
32|host|handshake fail|the TLS handshake failed: a CA that does not sign the server's certificate, SNI off for a cloud broker, an sslversion the server refuses, a client certificate/key mismatch, the certificate time check with a wrong clock, or TLS spoken to a plain-MQTT port|check the SSL context: AT+CSSLCFG "cacert" (the server's root CA), "enableSNI",<ctx>,1, "sslversion",<ctx>,4, matching clientcert/clientkey, "ignorelocaltime" or a set clock (AT+CCLK), and the broker's TLS port (8883)
33|host|not set certificate|the SSL context's authmode needs certificate files that are not set or not uploaded|upload the files with AT+CCERTDOWN and name them with AT+CSSLCFG "cacert"/"clientcert"/"clientkey",<ctx>,"<file>" before CONNECT
34|host|open SSL session failed|the module could not open an SSL session with this context: invalid sslversion/authmode/ciphersuite, or certificate files that are missing, unreadable or in the wrong format|check AT+CSSLCFG=<ctx>, that the files are in AT+CCERTLIST and are PEM with the exact byte length uploaded, and AT+CMQTTSSLCFG=<idx>,<ctx> before CONNECT
35|network|disconnect from server failed|DISC could not complete cleanly (the link was already gone)|ignore it and go on with REL/STOP
"""

# +CMQTTCONNLOST: <idx>,<cause> (§16.3.2)
CONNLOST = {1: "socket closed passively", 2: "socket reset", 3: "network closed"}

# +CME ERROR (3GPP TS 27.007 §9.2 and SIMCom's list): code|kind|meaning|cause|fix
_CME = """\
0|module|phone failure|the module failed internally|restart the module (AT+CRESET or a power cycle) and run the bring-up again
3|host|operation not allowed|the command is not allowed in the module's current state (SIM not ready, not registered, or out of order)|check the preconditions first (AT+CPIN? answers READY, registration 1 or 5) and the order of the commands
4|module|operation not supported|this module/firmware does not implement the command or the parameter|check the command's =? answer and AT+CGMR; do not rely on it with this firmware
10|host|SIM not inserted|the module sees no SIM card: none inserted, inserted the wrong way or not fully, or dirty contacts|power the device off, seat the SIM in its slot (contacts towards the board, pushed fully in), power on and wait for +CPIN: READY
11|host|SIM PIN required|the SIM is locked with a PIN|send AT+CPIN="<pin>" once at boot (keep the PIN out of logs), or remove the PIN lock in a phone
12|host|SIM PUK required|the PIN was entered wrong too often: the SIM now needs its PUK|unlock it with the carrier's PUK in a phone; never retry PINs automatically
13|host|SIM failure|the SIM cannot be read: defective, or deactivated by the carrier|try the SIM in a phone; replace it or ask the carrier to activate it
14|module|SIM busy|the SIM is still initialising (typical right after boot, before +CPIN: READY)|wait for +CPIN: READY (or retry AT+CPIN? after a second) before SIM or network commands
15|host|SIM wrong|the SIM is rejected (locked to another network, or the wrong kind of card)|use a SIM the module and carrier accept
16|host|incorrect password|the PIN/password given is wrong (the doctor never prints it)|check the PIN; after three wrong tries the SIM needs its PUK
17|host|SIM PIN2 required|the operation needs PIN2|enter PIN2 (AT+CPIN2) or avoid the operation
18|host|SIM PUK2 required|PIN2 was entered wrong too often|unlock PIN2 with PUK2 in a phone
20|module|memory full|the module's storage is full (SMS/phonebook memory, or the file system holding certificates)|delete what is no longer needed (AT+CCERTDELE="<file>", AT+CMGD) and retry
23|host|text string too long|a string parameter is longer than the command allows (APN, user, topic, file name)|shorten the string to the command's limit
30|network|no network service|the module is not registered: no coverage, antenna, band or the operator refuses it|wait for +CREG/+CGREG/+CEREG 1 or 5 before data commands; check the antenna, coverage and AT+COPS?
31|network|network timeout|the network did not answer in time|retry the command after a few seconds; if it repeats, check the signal (AT+CSQ) and the serving cell (AT+CPSI?)
32|network|network not allowed - emergency calls only|the network refuses this SIM (no subscription or no roaming agreement)|check the SIM's plan and roaming with the carrier
100|module|unknown|the module gives no reason|retry; check the command's state preconditions and syntax
103|network|illegal MS|the network rejected the SIM (blocked or unknown subscription)|ask the carrier to check the SIM's subscription
106|network|illegal ME|the network rejected the device (blocked IMEI)|ask the carrier about the module's IMEI
107|network|GPRS services not allowed|the subscription does not include packet data|enable data on the SIM's plan with the carrier
111|network|PLMN not allowed|registration on this operator is not allowed for the SIM|select an allowed operator (AT+COPS) or check roaming
112|network|location area not allowed|the SIM may not register in this area|check roaming/coverage with the carrier
113|network|roaming not allowed in this location area|roaming is not allowed here for this SIM|enable roaming on the SIM or use a local SIM
132|host|service option not supported|the network does not support the requested PDP context (PDP type or APN)|check the APN and PDP type "IP" in AT+CGDCONT
133|host|requested service option not subscribed|the APN is wrong or not part of the subscription|set the carrier's APN in AT+CGDCONT=1,"IP","<apn>"
134|network|service option temporarily out of order|the network's data service is temporarily unavailable|retry the data connection later with a backoff (minutes); it is the carrier's outage, not the device's
148|network|unspecified GPRS error|PDP activation failed for an unstated reason|check registration and the APN, then retry with a backoff
149|host|PDP authentication failure|the APN user name/password (AT+CGAUTH) were refused (the doctor never prints them)|check apn_user/apn_pass with the carrier, or leave them empty if the APN needs none
"""

ERROR_NO_CODE = ("the modem answered a bare ERROR, which names no reason: a syntax error, a parameter out of range, "
                 "or a state that does not allow the command",
                 "enable numbered errors with AT+CMEE=1 (or verbose AT+CMEE=2) at init so the next failure names "
                 "its reason; check the command against the manual's syntax and its preconditions")
CMS_ERROR = ("an SMS command failed", "see the +CMS ERROR code in 3GPP TS 27.005 §3.2.5; check the SMS service "
             "centre (AT+CSCA) and the SIM's SMS plan")

# Module firmware revisions (AT+CGMR / ATI) known to refuse AT+CSSLCFG (seed thread: LE11B02SIM7500A).
FIRMWARE_NO_SSL = ("LE11B02SIM7500A",)
FIRMWARE_NO_SSL_FIX = (
    "this SIM7600 firmware cannot do MQTT over SSL (AT+CSSLCFG refused): upgrade the module "
    "firmware over its USB port with SIMCom's tool (e.g. LE11B03SIM7600A-H or newer), or use plain "
    "MQTT / the WiFi transport")

PUB_TIMEOUT_MIN, PUB_TIMEOUT_MAX = 60, 180  # AT+CMQTTPUB=? in V3.00
BOOT_URCS = ("RDY", "+CPIN: READY", "SMS DONE", "PB DONE", "START", "*ATREADY: 1")


class Code:
    __slots__ = ("code", "kind", "meaning", "cause", "fix")

    def __init__(self, code, kind, meaning, cause, fix):
        self.code, self.kind, self.meaning, self.cause, self.fix = code, kind, meaning, cause, fix


def _table(text):
    out = {}
    for line in text.splitlines():
        if line.strip():
            n, kind, meaning, cause, fix = line.split("|")
            out[int(n)] = Code(int(n), kind, meaning, cause, fix)
    return out


CMQTT = _table(_CMQTT)
CME = _table(_CME)
CME_BY_TEXT = {c.meaning.lower(): c for c in CME.values()}


def cmqtt(code):
    """Code for a CMQTT <err>; an unknown number still gets a Code that says so."""
    c = CMQTT.get(code)
    if c is None:
        c = Code(code, MODULE, "unknown CMQTT error %s" % code,
                 "the module returned a code the SIM7600 V3.00 manual does not list",
                 "check the module's firmware (AT+CGMR) and its own manual; treat it as a failure and retry")
    return c


def cme(value):
    """Code for a +CME ERROR value: a number (AT+CMEE=1) or its text (AT+CMEE=2, 'SIM not inserted')."""
    s = str(value).strip()
    try:
        n = int(s)
    except ValueError:
        c = CME_BY_TEXT.get(s.lower())
        return c if c is not None else Code(s, MODULE, s, "the module reports: %s" % s,
                                            "look the text up in 3GPP TS 27.007 §9.2; check the command's preconditions")
    c = CME.get(n)
    if c is None:
        c = Code(n, MODULE, "CME error %d" % n, "the module reports +CME ERROR %d, which the common 3GPP TS 27.007 "
                 "list does not hold" % n, "look the number up in SIMCom's AT manual (the +CME ERROR appendix)")
    return c
