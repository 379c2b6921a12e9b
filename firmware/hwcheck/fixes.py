# hwcheck: what to fix for a CMQTT error of the CONNECT, by code; imported by the broker item only
# when a CONNECT failed. (The meaning of each code comes with the error from modem.cmqtt/modem.codes;
# these lines name the setting of config.json / secrets.json to change.)
_CONNECT_FIXES = (
    "3 4 26=check broker.host and broker.port ({port}): the broker must listen there and accept connections "
    "from the mobile network (firewall, cloud security group)\n"
    "25=check broker.host ({host}) is spelt right and resolvable from the mobile network\n"
    "7 9 23=the data connection dropped: check cellular.apn and the SIM's data plan, then retry\n"
    "17=no CONNACK in time: check broker.port ({port}) is the broker's MQTT port and broker.tls matches it "
    "(8883 is usually TLS, 1883 plain)\n"
    "27=the broker does not speak MQTT 3.1.1: use a broker (or listener) that does\n"
    "28=the broker refused the client id {id} (device_id): check its policy allows that id\n"
    "29=the broker is up but refuses service: retry later, check the broker's log\n"
    "30=check secrets mqtt_user and mqtt_pass against the broker's accounts\n"
    "31=the broker does not authorise this client: check its ACL/policy for the user or device certificate\n"
    "32=TLS handshake failed: certs.ca must be the CA that signed the broker's certificate; for mutual TLS "
    "certs.cert and certs.key the device's pair the broker trusts; broker.port a TLS listener\n"
    "33=set certs.ca (and certs.cert, certs.key for mutual TLS) in secrets.json and copy the files to the board\n"
    "34=the certificate files do not load: check certs.* are complete PEM files and the key matches the certificate\n"
)


def connect_fix(code, host, port, client_id):
    key = str(code)
    for line in _CONNECT_FIXES.split("\n"):
        i = line.find("=")
        if i > 0 and key in line[:i].split():
            return line[i + 1 :].replace("{port}", str(port)).replace("{host}", host).replace("{id}", repr(client_id))
    return None


