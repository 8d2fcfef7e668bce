"""Re-runs (issue 18 part 4): what changed since a previous report of the same endpoint — which checks
and requirement verdicts regressed, which were fixed, which checks are new or gone.

A regression is a loss of demonstrated conformance: pass (or warning) becoming fail, error or skipped
for a check, pass becoming fail or not tested for a requirement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["compare", "regressions"]

_GOOD_CHECK = {"pass", "warning"}
_BAD_CHECK = {"fail", "error"}


def _checks(report: Mapping[str, Any]) -> dict[str, str]:
    return {str(r["id"]): str(r["status"]) for r in report.get("results") or [] if isinstance(r, dict)}


def _requirements(report: Mapping[str, Any]) -> dict[str, str]:
    return {str(r["id"]): str(r["verdict"]) for r in report.get("requirements") or [] if isinstance(r, dict)}


def _change(kind: str, key: str, before: str, after: str) -> dict[str, str]:
    return {"kind": kind, "id": key, "from": before, "to": after}


def compare(previous: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison of two report dicts (``Report.to_dict()`` or a report file's JSON)."""
    regressed: list[dict[str, str]] = []
    fixed: list[dict[str, str]] = []
    old, new = _checks(previous), _checks(current)
    for key in new.keys() & old.keys():
        before, after = old[key], new[key]
        if before in _GOOD_CHECK and after not in _GOOD_CHECK:
            regressed.append(_change("check", key, before, after))
        elif before in _BAD_CHECK and after in _GOOD_CHECK:
            fixed.append(_change("check", key, before, after))
    old_req, new_req = _requirements(previous), _requirements(current)
    for key in new_req.keys() & old_req.keys():
        before, after = old_req[key], new_req[key]
        if before == "pass" and after != "pass":
            regressed.append(_change("requirement", key, before, after))
        elif before != "pass" and after == "pass":
            fixed.append(_change("requirement", key, before, after))
    return {
        "previousStarted": previous.get("started"),
        "previousBaseUrl": (previous.get("target") or {}).get("baseUrl"),
        "previousVerdict": previous.get("verdict"),
        "regressed": sorted(regressed, key=lambda c: (c["kind"], c["id"])),
        "fixed": sorted(fixed, key=lambda c: (c["kind"], c["id"])),
        "added": [_change("check", k, "-", new[k]) for k in sorted(new.keys() - old.keys())],
        "removed": [_change("check", k, old[k], "-") for k in sorted(old.keys() - new.keys())],
    }


def regressions(comparison: Mapping[str, Any]) -> list[str]:
    """One line per regression, for the console."""
    return [f"REGRESSED {c['kind']} {c['id']}: {c['from']} -> {c['to']}" for c in comparison.get("regressed") or []]
