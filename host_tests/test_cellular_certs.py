"""secrets.json names certificate files; the cellular transport uploads their bytes."""
import pytest

from net.cellular import read_certs
from net.publisher import NetError


def test_paths_are_read_as_bytes_and_empty_entries_skipped(tmp_path):
    ca = tmp_path / "AmazonRootCA1.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    got = read_certs({"ca": str(ca), "cert": "", "key": None})
    assert got == {"ca": ca.read_bytes()}
    assert read_certs({"cert": b"raw"}) == {"cert": b"raw"}
    assert read_certs(None) == {}


def test_missing_file_names_the_role_and_path(tmp_path):
    with pytest.raises(NetError) as e:
        read_certs({"key": str(tmp_path / "nope-private.pem.key")})
    assert "certs.key" in str(e.value) and "nope-private.pem.key" in str(e.value)
