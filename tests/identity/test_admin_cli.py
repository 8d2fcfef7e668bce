"""An administrator registers users and clients with ``kzfhir user`` / ``kzfhir client``; what does not fit
the resource server's own rules (a patient without a Patient, a backend service without a BIN or key, a
private key in a client's key set) is refused before it is stored."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from fhir_server.cli import main
from fhir_server.identity.passwords import check_password
from fhir_server.identity.registration import new_client, new_user
from fhir_server.identity.registry import Registry

pytestmark = pytest.mark.req("TM-04")


def _registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "kz-identity.sqlite")


def test_user_add_stores_a_scrypt_hash_and_the_binding(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-passw0rd\n"))
    code = main(["user", "add", "dr.serik", "--role", "practitioner", "--fhir-user", "Practitioner/dr1",
                 "--bin", "940140000385", "--password-stdin", "--database", str(tmp_path / "kz.sqlite")])
    assert code == 0, capsys.readouterr().err
    user = _registry(tmp_path).user("dr.serik")
    assert user is not None and user.role == "practitioner" and user.fhir_user == "Practitioner/dr1"
    assert user.password_hash.startswith("scrypt$") and "s3cret" not in user.password_hash
    assert check_password("s3cret-passw0rd", user.password_hash) and not check_password("other", user.password_hash)
    assert main(["user", "list", "--database", str(tmp_path / "kz.sqlite")]) == 0
    assert "dr.serik\tpractitioner\tPractitioner/dr1" in capsys.readouterr().out


def test_a_user_whose_role_does_not_fit_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-passw0rd\n"))
    code = main(["user", "add", "x", "--role", "patient", "--fhir-user", "Practitioner/1", "--password-stdin",
                 "--database", str(tmp_path / "kz.sqlite")])
    assert code == 2 and "Patient" in capsys.readouterr().err
    with pytest.raises(ValueError, match="8 characters"):
        new_user("y", "short", "patient", "Patient/1", None)


def test_client_add_registers_a_backend_service_with_its_bin_and_public_key(tmp_path, capsys):
    key = RSAKey.generate_key(2048, private=True)
    jwks = tmp_path / "mis.jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    code = main(["client", "add", "mis-1", "--name", "Clinic MIS", "--jwks", str(jwks), "--bin", "940140000385",
                 "--scope", "system/*.rs", "--database", str(tmp_path / "kz.sqlite")])
    assert code == 0, capsys.readouterr().err
    client = _registry(tmp_path).client("mis-1")
    assert client is not None and client.auth_method == "private_key_jwt" and client.bin == "940140000385"
    assert client.grant_types == ("client_credentials",) and client.scopes == ("system/*.rs",)


def test_a_private_key_in_a_client_key_set_is_refused(tmp_path, capsys):
    key = RSAKey.generate_key(2048, private=True)
    jwks = tmp_path / "oops.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    code = main(["client", "add", "mis-2", "--jwks", str(jwks), "--bin", "940140000385", "--scope", "system/*.rs",
                 "--database", str(tmp_path / "kz.sqlite")])
    assert code == 2 and "private key" in capsys.readouterr().err


def test_client_registrations_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="--jwks"):
        new_client("b", "B", bin="940140000385", scopes=["system/*.rs"], grant_types=["client_credentials"])
    with pytest.raises(ValueError, match="redirect"):
        new_client("a", "A", scopes=["openid"], grant_types=["authorization_code"])
    with pytest.raises(ValueError, match="https"):
        new_client("a", "A", redirect_uris=["http://app.example.kz/cb"], scopes=["openid"])
    with pytest.raises(ValueError, match="scope"):
        new_client("a", "A", redirect_uris=["https://app.example.kz/cb"])
    public = new_client("a", "A", redirect_uris=["https://app.example.kz/cb", "http://127.0.0.1:8000/cb"],
                        scopes=["openid"])
    assert public.auth_method == "none" and public.grant_types == ("authorization_code", "refresh_token")


def test_rotate_key_prints_the_new_kid(tmp_path, capsys):
    assert main(["auth", "rotate-key", "--database", str(tmp_path / "kz.sqlite")]) == 0
    assert "new signing key" in capsys.readouterr().out
    assert (tmp_path / "auth-jwks.json").exists()
