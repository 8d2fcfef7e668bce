"""Finding the server's record of each of the kit's accesses: AuditEvents (AC-14), the patient's access
log (AC-24) and the patient's notifications (AC-18).

A record belongs to an access when it carries the access's ``X-Request-Id`` (BALP puts it in an entity;
kzfhir does). When no record on the server carries any of the kit's request ids, the kit falls back to a
weaker match: the record names the caller and the resource touched (or the search value), and each
record is used for one access only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from conformance.access.journal import Access
from conformance.access.leaks import resources_in
from conformance.context import RunContext
from conformance.http import json_body
from conformance.identities import Identity
from conformance.model import CheckFailed

__all__ = ["Lister", "fetch_records", "is_emergency", "match", "same_origin", "wait_for"]

_PAGE_CAP = 20
_EMERGENCY_CODES = {"BTG", "ETREAT", "EMERGENCY"}

Lister = Callable[[], Awaitable[list[dict[str, Any]]]]


def _decoded_queries(record: dict[str, Any]) -> Iterator[str]:
    for entity in record.get("entity") or []:
        query = entity.get("query") if isinstance(entity, dict) else None
        if isinstance(query, str):
            try:
                yield base64.b64decode(query, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue


def _text(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + " ".join(_decoded_queries(record))


def _clue(access: Access) -> str | None:
    """The distinctive value of an access for the weak match: the id of what it touched, else the last
    value of its query (the kit's search values are unique to the run)."""
    if access.target and "/" in access.target:
        return access.target.split("/", 1)[1]
    _, _, query = access.request.partition("?")
    return query.rsplit("=", 1)[-1].split("|")[-1] if query else None


def _recorded(record: dict[str, Any]) -> datetime | None:
    value = record.get("recorded") or record.get("sent")
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _weak(access: Access, record: dict[str, Any], text: str) -> bool:
    clue = _clue(access)
    when = _recorded(record)
    near = when is None or abs(when - access.at) <= timedelta(minutes=5)
    return bool(near and clue and clue in text and (access.reference is None or access.reference in text))


def match(records: list[dict[str, Any]], accesses: list[Access], *,
          exclusive: bool = True) -> dict[int, dict[str, Any]]:
    """Index in ``accesses`` -> the record found for it. Of several records of one request (a read and
    the notice it caused), an emergency access takes the one marked as an emergency. ``exclusive``: a
    weakly matched record serves one access only (not so for notifications, where one digest may tell
    of several accesses)."""
    texts = [_text(r) for r in records]
    by_id = any(a.request_id and a.request_id in t for a in accesses for t in texts)
    found: dict[int, dict[str, Any]] = {}
    used: set[int] = set()
    for i, access in enumerate(accesses):
        if by_id:
            hits = [j for j, text in enumerate(texts) if access.request_id in text]
        else:
            hits = [j for j, (r, t) in enumerate(zip(records, texts, strict=True))
                    if (j not in used or not exclusive) and _weak(access, r, t)][:1]
        if access.emergency:
            hits.sort(key=lambda j: not is_emergency(records[j]))
        if hits:
            found[i] = records[hits[0]]
            used.add(hits[0])
    return found


def is_emergency(record: dict[str, Any]) -> bool:
    """The record says the access was an emergency (BALP: purposeOfEvent BTG/ETREAT) or quotes the
    break-glass reason the kit sent."""
    codes = {c.get("code") for p in record.get("purposeOfEvent") or [] if isinstance(p, dict)
             for c in p.get("coding") or [] if isinstance(c, dict)}
    return bool(codes & _EMERGENCY_CODES) or "break-glass" in _text(record).lower()


def same_origin(ctx: RunContext, url: str) -> bool:
    """``url`` is below the base URL: the identities' tokens are never sent to another host."""
    return url.startswith(str(ctx.client.http.base_url).rstrip("/"))


async def fetch_records(
    ctx: RunContext, identity: Identity, path: str, params: dict[str, str], since: tuple[str, str] | None,
) -> list[dict[str, Any]]:
    """Every record (AuditEvent, Communication ...) a listing returns, following ``next`` links (same
    origin only: the identity's token is never sent elsewhere). ``since`` is a (name, value) filter,
    dropped when the server refuses it with 400. Raises CheckFailed when the listing is refused."""
    query = {**params, **({since[0]: since[1]} if since else {})}
    response = await ctx.client.get(path, params=query, identity=identity)
    if response.status_code == 400 and since:
        response = await ctx.client.get(path, params=params, identity=identity)
    if response.status_code != 200:
        raise CheckFailed(f"{path} as {identity.label}: HTTP {response.status_code}")
    records: list[dict[str, Any]] = []
    for _ in range(_PAGE_CAP):
        body = json_body(response) or {}
        records += [r for r in resources_in(body) if r is not body and r.get("resourceType") != "OperationOutcome"]
        records += _parameters_entries(body)
        following = next((str(link.get("url")) for link in body.get("link") or []
                          if isinstance(link, dict) and link.get("relation") == "next"), None)
        if not following or not same_origin(ctx, following):
            break
        response = await ctx.client.get(following, identity=identity)
        if response.status_code != 200:
            break
    return records


def _parameters_entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A compact access log (Parameters with one ``entry`` part list per line) as plain dicts."""
    if body.get("resourceType") != "Parameters":
        return []
    return [{"parameter": p.get("part")} for p in body.get("parameter") or []
            if isinstance(p, dict) and p.get("name") == "entry"]


async def wait_for(
    lister: Lister, accesses: list[Access], seconds: float, *, exclusive: bool = True,
) -> tuple[dict[int, dict[str, Any]], int]:
    """Poll ``lister`` until a record is found for every access or ``seconds`` pass (records may be
    written asynchronously: kzfhir chains journaled reads about once a second). Returns the matches and
    the number of records seen last."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        records = await lister()
        found = match(records, accesses, exclusive=exclusive)
        if len(found) == len(accesses) or asyncio.get_running_loop().time() >= deadline:
            return found, len(records)
        await asyncio.sleep(0.5)
