"""The access-rights scenario, built once per run on first need.

The test patient P holds an Observation O (a KZ vital sign, with a marker identifier the conditional
checks search for, performed by the consented practitioner, measured by a device). The kit's main
token (the MIS "writer") creates it after recording, if the server needs one, the writer's own access
Consent (fixtures.ensure_access). The practitioners are then strangers to P: the consented one until
the patient grants it consent (ACC-10), the unconsented one throughout (ACC-01..ACC-08).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from conformance.access.journal import Access, Journal
from conformance.context import RunContext
from conformance.examples import IIN_SYSTEM, MARKER_SYSTEM, fresh_iin, identifier_value, valid_example
from conformance.expect import expect_resource, expect_status
from conformance.identities import Cast, Identity, Minter
from conformance.model import CheckFailed, CheckSkipped

__all__ = ["BREAK_GLASS_HEADER", "Scenario", "scenario"]

BREAK_GLASS_HEADER = "X-Break-Glass-Reason"  # the kzfhir convention (docs/security.md §1); files may differ
_REASON = "emergency: the patient cannot consent"  # plain words: no fixed mark of the kit


@dataclass
class Scenario:
    patient: Identity
    consented: Identity
    unconsented: Identity
    emergency: Identity | None
    auditor: Identity | None
    other_patient: Identity | None
    endpoints: dict[str, str]
    patient_id: str
    observation_id: str
    marker: str  # O's identifier value in MARKER_SYSTEM
    device_id: str | None
    iin: str | None
    family: str | None
    started: datetime
    journal: Journal = field(default_factory=Journal)
    extra_hidden: set[str] = field(default_factory=set)  # more of P's resources (a Provenance ...)
    consent_id: str | None = None  # the consented practitioner's Consent, once granted (ACC-10)
    consent_by: str = ""  # who recorded it: "patient" (the owner) or "writer" (a signed form, AC-08)
    other_consent_id: str | None = None  # the second patient's Consent for the unconsented practitioner

    @property
    def patient_ref(self) -> str:
        return f"Patient/{self.patient_id}"

    @property
    def observation_ref(self) -> str:
        return f"Observation/{self.observation_id}"

    def hidden(self) -> set[str]:
        return {self.patient_ref, self.observation_ref, *self.extra_hidden}

    def markers(self) -> dict[str, str]:
        """Values only someone allowed to see P's data knows: a refusal must name none of them."""
        found = {"the patient's id": self.patient_id, "the Observation's id": self.observation_id,
                 "the Observation's identifier": self.marker, "the patient's IIN": self.iin or "",
                 "the patient's family name": self.family or ""}
        return {label: value for label, value in found.items() if value}

    async def access(
        self, ctx: RunContext, identity: Identity | None, method: str, path: str, *,
        target: str | None = None, in_log: bool = False, notify: bool = False, **kwargs: Any,
    ) -> httpx.Response:
        """Send the request as ``identity`` (None: the writer) and journal it for the audit checks."""
        response = await ctx.client.request(method, path, identity=identity, **kwargs)
        who = identity.label if identity else "writer"
        # A notice (AC-18) and the emergency mark (AC-02) belong to a use of the data: a refused request
        # is a refusal on record like any other (ACC-10 / ACC-12 fail the refusal itself, once).
        used = response.is_success
        self.journal.add(Access(
            who, identity.reference if identity else None, f"{method} {path}",
            response.request.headers.get("X-Request-Id", ""), response.status_code, datetime.now(UTC),
            target, in_log, notify and used, emergency=bool(identity and identity.role == "emergency" and used)))
        return response


async def scenario(ctx: RunContext) -> Scenario:
    """The run's scenario, built on first call (check ACC-00). When it cannot be built, the check that
    tried fails or skips with the reason, and every later one skips naming it (the failure is cached)."""
    if isinstance(ctx.scenario, Scenario):
        return ctx.scenario
    if isinstance(ctx.scenario, Exception):
        raise CheckSkipped(f"the access scenario could not be set up: {ctx.scenario}")
    try:
        ctx.scenario = await _build(ctx)
    except (CheckSkipped, CheckFailed) as exc:
        ctx.scenario = exc
        raise
    return ctx.scenario


async def _build(ctx: RunContext) -> Scenario:
    started = datetime.now(UTC)
    if ctx.minter is not None:
        cast = await _provision(ctx, ctx.minter)
    elif ctx.cast is not None:
        cast = ctx.cast
    else:
        raise CheckSkipped("no test identities: run the kit with --identities FILE (tokens of a patient, "
                           "a practitioner to consent to and one without consent), or --dev-key for a "
                           "kzfhir development deployment")
    missing = [r for r, i in (("patient", cast.patient), ("consented", cast.consented),
                              ("unconsented", cast.unconsented)) if i is None or i.reference is None]
    if missing or cast.patient is None or cast.consented is None or cast.unconsented is None:
        raise CheckSkipped(f"the identities file lacks {', '.join(missing)} (with reference and token)")
    patient_id = str(cast.patient.reference).split("/", 1)[1]
    await ctx.fixtures.ensure_access(patient_id)
    if cast.other_patient is not None and cast.other_patient.reference:  # so the writer can clean up there
        await ctx.fixtures.ensure_access(cast.other_patient.reference.split("/", 1)[1])
    facts = await _read_patient(ctx, patient_id)
    built = Scenario(cast.patient, cast.consented, cast.unconsented, cast.emergency, cast.auditor,
                     cast.other_patient, dict(cast.endpoints), patient_id, "", uuid.uuid4().hex,
                     None, identifier_value(facts, IIN_SYSTEM), _family(facts), started)
    await _create_observation(ctx, built)
    return built


async def _read_patient(ctx: RunContext, patient_id: str) -> dict[str, Any]:
    response = await ctx.client.get(f"Patient/{patient_id}")
    expect_status(ctx.client, response, 200, doing=f"the writer reading the test patient Patient/{patient_id}")
    return expect_resource(response, "Patient", doing="read the test patient")


def _family(patient: dict[str, Any]) -> str | None:
    names = [n for n in patient.get("name") or [] if isinstance(n, dict) and isinstance(n.get("family"), str)]
    return str(names[0]["family"]) if names else None


async def _create_observation(ctx: RunContext, built: Scenario) -> None:
    example = valid_example("Observation/kz-observation-1") or {}
    example["subject"] = {"reference": built.patient_ref}
    example["performer"] = [{"reference": built.consented.reference}]
    example["identifier"] = [{"system": MARKER_SYSTEM, "value": built.marker}]
    observation = await ctx.fixtures.adapt(example)
    device = (observation.get("device") or {}).get("reference", "")
    built.device_id = device.split("/", 1)[1] if device.startswith("Device/") else None
    response = await built.access(ctx, None, "POST", "Observation", json=observation, target="Observation")
    expect_status(ctx.client, response, 201, 200, doing="the writer creating the test patient's Observation")
    created = expect_resource(response, "Observation", doing="create the test Observation")
    built.observation_id = str(created.get("id") or "")
    if not built.observation_id:
        raise CheckSkipped("the server named no id for the test Observation")
    ctx.fixtures.track("Observation", built.observation_id)


# Names for the scenario's people, drawn anew for each run: the IG examples' names are public, and a
# server must not be able to recognise the kit's test people by them (no fingerprint, like the ids).
# No surname here occurs in the IG examples or inside another: a patient's surname is a leak marker.
_FAMILIES = ("Бекетов", "Жумабаев", "Касымов", "Муратов", "Оспанов", "Сейткали", "Тулегенов", "Абенов")
_GIVEN = {"male": ("Арман", "Ерлан", "Нурлан", "Данияр", "Айдос", "Бауыржан"),
          "female": ("Айгуль", "Динара", "Жанар", "Мадина", "Сауле", "Гульнара")}


def _renamed(resource: dict[str, Any], stem: str, rng: random.Random) -> None:
    """A fresh family name from ``stem`` (Kazakh surnames take -а for women) and given name, the
    narrative dropped: it named the example person (R4 narrative.html: text is optional, dom-6 only
    advises it)."""
    female = resource.get("gender") == "female"
    family = stem + ("а" if female else "")
    given = rng.choice(_GIVEN["female" if female else "male"])
    for name in resource.get("name") or []:
        if isinstance(name, dict):
            name.update(family=family, given=[given])
            name.pop("text", None)
    resource.pop("text", None)


async def _create_person(ctx: RunContext, example_ref: str, stem: str) -> str:
    resource = await ctx.fixtures.adapt(valid_example(example_ref) or {})
    for identifier in resource.get("identifier", []):
        if identifier.get("system") == IIN_SYSTEM:  # a person of this scenario only, never reused
            identifier["value"] = fresh_iin(str(identifier["value"]), ctx.fixtures.rng)
    _renamed(resource, stem, ctx.fixtures.rng)
    kind = example_ref.split("/")[0]
    server_id = await ctx.fixtures.create(resource, doing=f"creating a test {kind} ({example_ref})")
    return f"{kind}/{server_id}"


async def _provision(ctx: RunContext, mint: Minter) -> Cast:
    """Create the patients and practitioners through the API, then mint a token for each."""
    # one surname stem each: a practitioner's name must never contain the patient's (the leak markers)
    stems = ctx.fixtures.rng.sample(_FAMILIES, 4)
    consented = await _create_person(ctx, "Practitioner/kz-practitioner-2", stems[0])
    unconsented = await _create_person(ctx, "Practitioner/kz-practitioner-3", stems[1])
    patient = await _create_person(ctx, "Patient/kz-patient-2", stems[2])
    other = await _create_person(ctx, "Patient/kz-patient-3", stems[3])
    stranger = Identity("unconsented", mint("practitioner", unconsented), unconsented)
    return Cast(
        patient=Identity("patient", mint("patient", patient), patient),
        consented=Identity("consented", mint("practitioner", consented), consented),
        unconsented=stranger,
        emergency=Identity("emergency", stranger.token, unconsented, {BREAK_GLASS_HEADER: _REASON}),
        auditor=Identity("auditor", mint("auditor", None)),
        other_patient=Identity("other-patient", mint("patient", other), other),
    )
