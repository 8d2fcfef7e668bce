"""Human-readable rendering of a :class:`VerificationStatus` (CLI output, logs)."""

from __future__ import annotations

from signing.status import VerificationStatus


def render(status: VerificationStatus) -> list[str]:
    """Lines: verdict first, then who signed, then each reason with its exact message."""
    verdict = "VALID" if status.ok else "INVALID"
    lines = [f"{verdict}  {status.format} signature"]
    if status.signer_subject:
        lines.append(f"  signer:       {status.signer_subject}")
    ids = ", ".join(
        x for x in (f"IIN {status.iin}" if status.iin else "", f"BIN {status.bin}" if status.bin else "") if x
    )
    if ids:
        lines.append(f"  identifiers:  {ids}")
    if status.algorithm:
        lines.append(f"  algorithm:    {status.algorithm}")
    if status.signing_time:
        lines.append(f"  signing time: {status.signing_time.isoformat()} (claimed by the signer)")
    lines.append(
        f"  checks:       intact={_yn(status.intact)} valid={_yn(status.valid)} "
        f"trusted={_yn(status.trusted)} revoked={_yn(status.revoked)}"
    )
    lines += [f"  refused:      {f.reason.value}: {f.message}" for f in status.findings]
    lines += [f"  note:         {note}" for note in status.notes]
    return lines


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def print_status(status: VerificationStatus) -> None:
    print("\n".join(render(status)))
