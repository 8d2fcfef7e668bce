"""Access beyond duties flagged for the auditor (AC-20): patient p3 consented to the whole organisation (a broad
consent by BIN). Doctor dr4, in p3's care team, reads within her duties; doctor dr3 of the same organisation,
in no care relationship with p3, is allowed by the consent but flagged in the audit, on the compiled read by id
and on search alike; a purpose of use that is not care is flagged too; the auditor lists the flagged accesses
with ``AuditEvent/$access-flags``, nobody else may. Security is on."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.security.policy.duties import BREAK_GLASS, NO_CARE_RELATIONSHIP, PURPOSE_BEYOND_CARE
from fhir_server.security.refs import BIN_SYSTEM
from tests.orders.conftest import OpenWorld

BIN = "940140000385"
EXTRA: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p3", "name": [{"family": "Жумабаева"}]},
    {"resourceType": "Practitioner", "id": "dr3", "name": [{"family": "Сериков"}]},
    {"resourceType": "Practitioner", "id": "dr4", "name": [{"family": "Омарова"}]},
    {"resourceType": "Consent", "id": "c-broad", "status": "active",
     "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
     "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
     "patient": {"reference": "Patient/p3"},
     "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
     "provision": {"provision": [{"type": "permit", "actor": [
         {"role": {"coding": [{"code": "PRCP"}]},
          "reference": {"identifier": {"system": BIN_SYSTEM, "value": BIN}}}]}]}},
    {"resourceType": "CareTeam", "id": "team3", "status": "active", "subject": {"reference": "Patient/p3"},
     "participant": [{"member": {"reference": "Practitioner/dr4"}}]},
    {"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "glucose"},
     "subject": {"reference": "Patient/p3"}, "valueString": "5.1"},
]


def _flags(event: dict[str, Any]) -> list[str]:
    return [d["valueString"] for e in event.get("entity", []) for d in e.get("detail", [])
            if d.get("type") == "access-flag"]


def _who(event: dict[str, Any]) -> str:
    return next(a["who"].get("reference", "") for a in event["agent"] if a.get("requestor"))


@pytest.mark.req("AC-20")
async def test_access_without_a_care_relationship_is_flagged_and_listed_for_the_auditor(open_world: OpenWorld):
    async with open_world(EXTRA) as w:
        outsider = w.auth("practitioner", "Practitioner/dr3", bin=BIN)
        carer = w.auth("practitioner", "Practitioner/dr4", bin=BIN)
        named = w.as_("Practitioner/dr1")  # named personally in p1's consent c1
        auditor = w.auth("auditor", "Practitioner/aud1")
        for headers in (outsider, carer):  # the consent decides: both may read
            for _ in range(2):  # the second read is answered from the compiled read's cached verdict
                assert (await w.client.get("/Observation/o3", headers=headers)).status_code == 200
            assert (await w.client.get("/Observation?subject=Patient/p3", headers=headers)).status_code == 200
        assert (await w.client.get("/Patient/p1", headers=named)).status_code == 200
        research = {**named, "X-Purpose-Of-Use": "HRESCH"}
        assert (await w.client.get("/Encounter?subject=Patient/p1", headers=research)).status_code == 200

        # the audit records carry the flag: every access of dr3, none of dr4's or dr1's care reads
        await w.store.audit.sync()
        events = [e for _, e in await w.store.audit.events("Patient/p3", 500) if e.get("outcome") == "0"]
        by_dr3 = [e for e in events if _who(e) == "Practitioner/dr3"]
        by_dr4 = [e for e in events if _who(e) == "Practitioner/dr4"]
        assert len(by_dr3) >= 3 and all(NO_CARE_RELATIONSHIP in _flags(e) for e in by_dr3)
        assert by_dr4 and not any(_flags(e) for e in by_dr4)

        # the auditor's list: the flagged accesses, newest first, filterable by patient and flag
        r = await w.client.get("/AuditEvent/$access-flags?patient=p3", headers=auditor)
        assert r.status_code == 200, r.text
        listed = [e["resource"] for e in r.json()["entry"]]
        assert {_who(e) for e in listed} == {"Practitioner/dr3"} and len(listed) >= 3
        r = await w.client.get(f"/AuditEvent/$access-flags?flag={PURPOSE_BEYOND_CARE}", headers=auditor)
        listed = [e["resource"] for e in r.json()["entry"]]
        assert listed and {_who(e) for e in listed} == {"Practitioner/dr1"}
        paged = (await w.client.get("/AuditEvent/$access-flags?_count=1", headers=auditor)).json()
        assert len(paged["entry"]) == 1 and any(lk["relation"] == "next" for lk in paged["link"])
        nxt = next(lk["url"] for lk in paged["link"] if lk["relation"] == "next").split("/fhir", 1)[-1]
        second = (await w.client.get(nxt[nxt.index("/AuditEvent/$"):], headers=auditor)).json()
        assert second["entry"][0]["resource"]["id"] != paged["entry"][0]["resource"]["id"]
        bad = await w.client.get("/AuditEvent/$access-flags?flag=nosy", headers=auditor)
        assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["flag"]
        for caller in (outsider, w.as_("Patient/p3")):
            assert (await w.client.get("/AuditEvent/$access-flags", headers=caller)).status_code == 403


@pytest.mark.req("AC-20")
async def test_access_beyond_duties_is_flagged_on_every_path_to_the_data(open_world: OpenWorld):
    """The flag rides on every path a consented read takes, not only the read by id and search: history,
    vread, includes, Bundle entries, $everything and $export. Each successful access of dr3 to p3's data is
    an AuditEvent under p3 that carries the flag; none of the care-team doctor's does."""
    from tests.security_http import leak_probes as probes

    async with open_world(EXTRA) as w:
        outsider = w.auth("practitioner", "Practitioner/dr3", bin=BIN)
        carer = w.auth("practitioner", "Practitioner/dr4", bin=BIN)
        paths = ["/Observation/o3/_history", "/Observation/o3/_history/1", "/Observation/_history",
                 "/_history", "/Observation?_include=Observation:subject&_id=o3",
                 "/Patient?_id=p3&_revinclude=Observation:subject", "/Patient/p3/Observation",
                 "/Patient/p3/$everything", "/?_type=Observation&_id=o3"]
        for headers in (outsider, carer):
            for path in paths:
                r = await w.client.get(path, headers=headers)
                assert r.status_code == 200 and "5.1" in r.text, (path, r.text)
            assert (await w.client.get("/Patient/p3/_history", headers=headers)).status_code == 200
            for kind in ("batch", "transaction"):
                r = await w.client.post("/", headers=headers, json={"resourceType": "Bundle", "type": kind, "entry": [
                    {"request": {"method": "GET", "url": "Observation/o3"}},
                    {"request": {"method": "GET", "url": "Observation?subject=Patient/p3"}}]})
                assert r.status_code == 200 and r.text.count("5.1") == 2, r.text
            seen = probes.Seen()
            await probes.exports(probes.Prober(w.client, headers, seen))
            assert any(e.get("id") == "o3" for e in seen.exported)
        # an emergency without consent (AC-02): the history listings are recorded as break-glass too
        emergency = {**w.auth("practitioner", "Practitioner/dr9", break_glass="unconscious"),
                     "X-Break-Glass-Reason": "unconscious, no ID"}
        for path in ("/Observation/o3/_history", "/Observation/_history", "/Observation/o3"):
            r = await w.client.get(path, headers=emergency)
            assert r.status_code == 200 and "5.1" in r.text, (path, r.text)

        await w.store.audit.sync()
        events = [e for _, e in await w.store.audit.events("Patient/p3", 2000) if e.get("outcome") == "0"]
        by_dr3 = [e for e in events if _who(e) == "Practitioner/dr3"]
        unflagged = [str([en.get("description") or en.get("what") for en in e["entity"]]) for e in by_dr3
                     if NO_CARE_RELATIONSHIP not in _flags(e)]
        assert unflagged == []
        assert len(by_dr3) >= len(paths) + 2 + 1  # each path, the two Bundles, the export (and more)
        assert not any(_flags(e) for e in events if _who(e) == "Practitioner/dr4")
        by_dr9 = [e for e in events if _who(e) == "Practitioner/dr9"]
        assert len(by_dr9) == 3 and all(BREAK_GLASS in _flags(e) for e in by_dr9)
        assert all(any(c.get("code") == "BTG" for p in e.get("purposeOfEvent", []) for c in p.get("coding", []))
                   for e in by_dr9)
