"""The security baseline (TM-01, TM-14, TM-17, TM-21): every setting, module and document docs/security-baseline.md
names exists, and production mode refuses the unsafe configurations it lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "security-baseline.md").read_text(encoding="utf-8")


@pytest.mark.req("TM-01")
@pytest.mark.req("TM-14")
@pytest.mark.req("TM-17")
@pytest.mark.req("TM-21")
def test_every_setting_module_and_document_named_exists():
    settings = set(Settings.model_fields)
    named = set(re.findall(r"KZFHIR_([A-Z_]+)", PAGE))
    assert named and {n.lower() for n in named} <= settings
    for path in re.findall(r"\((docs/[a-z-]+\.md)", PAGE) + re.findall(r"`(fhir_server/[a-z_/]+)`", PAGE):
        assert (ROOT / path).exists(), path


@pytest.mark.req("TM-01")
@pytest.mark.req("TM-17")
def test_production_refuses_what_the_baseline_says_it_refuses(tmp_path: Path):
    base = {"database": tmp_path / "x.sqlite", "dev_key_path": tmp_path / "k.json", "env": "production"}
    with pytest.raises(ValueError, match=r"identity provider|JWKS"):
        create_app(Settings(**base))
    with pytest.raises(ValueError, match="security off"):
        create_app(Settings(**base, security_enabled=False))
    with pytest.raises(ValueError, match="AC-23"):
        create_app(Settings(**base, jwks_url="https://idp.example.com/jwks"))
    assert Settings().host == "127.0.0.1"  # plain HTTP on loopback only; TLS at the proxy
