"""The simulator's protocol tables (peers/sim7600_tables.py, written from the SIMCom manual and the seed thread)
against the firmware's (modem/codes.py): where both describe the same fact they must agree. The simulator never
imports the firmware's tables (checked here too); only this test reads both. A disagreement is a finding about
one side or the other — fix the side that is wrong, never this test."""
import ast
import glob
import os

from peers import sim7600_tables as sim

from modem import codes as fw

HERE = os.path.dirname(os.path.abspath(__file__))


def test_no_peer_imports_the_firmware():
    firmware_pkgs = {os.path.basename(p) for p in glob.glob(os.path.join(HERE, "..", "firmware", "*"))
                     if os.path.isdir(p)} | {"hwcheck", "main", "boot"}
    for path in glob.glob(os.path.join(HERE, "peers", "*.py")):
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in firmware_pkgs, "%s imports the firmware's %s" % (
                    os.path.basename(path), n)


def test_cmqtt_limits_agree():
    for name in ("TOPIC_MAX", "PAYLOAD_MAX", "CLIENT_ID_MAX", "RX_CHUNK_MAX", "PUB_TIMEOUT_MIN", "PUB_TIMEOUT_MAX",
                 "CERT_MAX"):
        assert getattr(fw, name) == getattr(sim, name), name


def test_registration_states_agree():
    assert tuple(fw.REG_OK) == sim.REG_REGISTERED
    assert fw.REG_DENIED == sim.REG_DENIED
    for stat, words in ((sim.REG_HOME, "home"), (sim.REG_ROAMING, "roaming"), (sim.REG_DENIED, "denied"),
                        (sim.REG_SEARCHING, "searching"), (sim.REG_NOT_SEARCHING, "not searching")):
        assert words in fw.reg_state(stat), (stat, fw.reg_state(stat))


def test_cme_texts_agree():
    # the module prints these texts with AT+CMEE=2; the firmware must know each one the simulator answers
    for code, text in sim.CME_TEXT.items():
        assert fw.cme_meaning(code) == text, (code, fw.cme_meaning(code), text)


def test_cmqtt_error_texts_agree():
    for code, text in sim.CMQTT_TEXT.items():
        assert fw.cmqtt_meaning(code) == text, (code, fw.cmqtt_meaning(code), text)


def test_firmware_without_ssl_and_boot_urcs_agree():
    assert set(sim.FIRMWARE_NO_SSL) <= set(fw.FIRMWARE_NO_SSL)
    assert tuple(fw.BOOT_URCS) == sim.BOOT_URCS


def test_power_key_thresholds_fit_the_firmware_presses():
    from modem.power import POWER_TIMING

    assert sim.POWER_ON_PRESS_MS <= POWER_TIMING["pulse_ms"] < sim.POWER_OFF_PRESS_MS
    assert POWER_TIMING["off_pulse_ms"] >= sim.POWER_OFF_PRESS_MS
