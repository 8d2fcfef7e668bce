"""access: the scenario the other access checks act on, set up first so that its requests (creating the
people and the patient's data, recording the writer's consent) are this check's evidence, not theirs."""

from __future__ import annotations

from conformance.access.scenario import scenario
from conformance.context import RunContext
from conformance.model import Outcome, passed
from conformance.registry import check

GROUP = "access"


@check("ACC-00", GROUP, "The access scenario is set up: test identities, the patient and their Observation",
       ["R4 http.html#create"])
async def scenario_set_up(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    others = [i.label for i in (sc.emergency, sc.auditor, sc.other_patient) if i is not None]
    return passed(f"{sc.patient.label} holds {sc.observation_ref}; acting as {sc.consented.label}, "
                  f"{sc.unconsented.label}" + (f", {', '.join(others)}" if others else ""))
