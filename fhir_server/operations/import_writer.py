"""Writing prepared ``$import`` lines: many resources per write unit, through the write executor.

A chunk of prepared lines becomes one plan of ``WriteOp``s (``PUT [type]/[id]`` for a line with an id,
``POST [type]`` without) run by ``interactions/executor.execute`` — the path every write takes — in one store
unit: versions, history, index rows, compartments, the policy's judgement of every version written and
replaced, the AuditEvents and the patients' notifications all commit together (architecture decision 5).

One refused or failing resource rolls its unit back. The chunk is then split in halves and each half run
again, down to the single line, so a chunk with ``k`` bad lines costs about ``k log n`` more units and
every other line is still imported; the refused line gets the executor's own answer (its status and
OperationOutcome) in the job's error file. The records of an attempt that was rolled back and split are
dropped: the halves record the same accesses again, once each.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import FhirError
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import WriteOp
from fhir_server.interactions.request import FhirRequest
from fhir_server.operations.import_lines import Prepared

_SINGLES = 4  # a failed unit this small is retried line by line rather than halved again


@dataclass(slots=True)
class Written:
    line: Prepared
    outcome: str  # created | updated


def _op(line: Prepared) -> WriteOp:
    """A fresh op each attempt: the executor stores its results on the op."""
    return WriteOp(line.method, line.resource_type, line.resource_id, resource=line.resource, signers=line.signers)


Refusals = list[tuple[Prepared, FhirError]]


async def write_chunk(base: FhirRequest, lines: list[Prepared]) -> tuple[list[Written], Refusals]:
    """Write the lines; what was written and which lines were refused, with the executor's error."""
    written: list[Written] = []
    refused: Refusals = []
    await _attempt(base, lines, written, refused)
    return written, refused


async def _attempt(base: FhirRequest, lines: list[Prepared], written: list[Written], refused: Refusals) -> None:
    if not lines:
        return
    req = base.fork()  # a session per unit: its records commit with the unit, or are dropped with it
    ops = [_op(line) for line in lines]
    try:
        await execute(req, ops, transaction=False)
    except FhirError as exc:
        if len(lines) == 1:
            await req.access.flush()  # the refusal itself is on record (AC-14)
            refused.append((lines[0], exc))
            return
        if len(lines) <= _SINGLES:
            for line in lines:
                await _attempt(base, [line], written, refused)
            return
        middle = len(lines) // 2
        await _attempt(base, lines[:middle], written, refused)
        await _attempt(base, lines[middle:], written, refused)
        return
    await req.access.flush()  # probes recorded by a unit that committed (hidden matches)
    written.extend(Written(line, op.outcome) for line, op in zip(lines, ops, strict=True))
