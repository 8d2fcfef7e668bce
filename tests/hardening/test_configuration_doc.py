"""Every limit is a documented setting (issue 12 §2); that docs/configuration.md is generated from
config.py and current is tests/operator/test_configuration_doc.py."""

from __future__ import annotations

from fhir_server.config import Settings


def test_every_limit_setting_says_what_it_bounds() -> None:
    limits = [n for n in Settings.model_fields if n.startswith(("max_", "search_max_")) or n.endswith("_timeout")]
    assert len(limits) >= 14
    assert all(Settings.model_fields[n].description for n in limits if n != "max_conditional_delete")
