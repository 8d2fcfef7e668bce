"""Shared by the fuzz suites: one server per mode on a background event loop (so hypothesis can
drive it from plain test functions), hostile-JSON and hostile-URL strategies, and the one check
every answer must pass (issue 12 §1)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.conftest import BASE

FHIR_JSON = {"content-type": "application/fhir+json"}
EXAMPLES = int(os.environ.get("KZFHIR_FUZZ_EXAMPLES", "120"))  # per test and mode; CI keeps the default
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                HealthCheck.data_too_large])
SEED: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметов", "given": ["Ерлан"]}], "gender": "male",
     "birthDate": "1985-03-15"},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},
    {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "pulse"},
     "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2025-05-01T10:00:00+05:00",
     "valueQuantity": {"value": 72.50, "unit": "/min"}},
]


@dataclass
class Server:
    portal: BlockingPortal
    client: httpx.AsyncClient
    headers: dict[str, str]
    mode: str

    def request(self, method: str, url: str, *, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        merged = {**self.headers, **(headers or {})}
        return self.portal.call(lambda: self.client.request(method, url, content=content, headers=merged))


def _seed(config: Settings) -> None:
    """Two versions of each seed resource (for vread and history), written in open mode as an
    operator would load data; the fuzzed server then runs in its own mode on the same file."""
    app = create_app(config.model_copy(update={"security_enabled": False}))
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(app.router.lifespan_context(app)):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        for resource in SEED * 2:
            r = portal.call(lambda res=resource: client.put(f"/{res['resourceType']}/{res['id']}", json=res,
                                                            headers=FHIR_JSON))
            assert r.status_code in (200, 201), r.text
        portal.call(client.aclose)


@pytest.fixture(scope="module", params=["open", "secure"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp(request.param)
    secure = request.param == "secure"
    config = Settings(database=folder / "db.sqlite", synchronous_full=False, security_enabled=secure,
                      dev_key_path=folder / "dev-jwks.json")
    _seed(config)
    headers = {}
    if secure:
        token = issue_dev_token("system", None, bin="940140000385", key_path=config.dev_key_path)
        headers = {"Authorization": f"Bearer {token}"}
    app = create_app(config)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(app.router.lifespan_context(app)):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=120)
        yield Server(portal, client, headers, request.param)
        portal.call(client.aclose)


def check(r: httpx.Response) -> None:
    """No 5xx, and every failure is an OperationOutcome with coded issues (issue 12 §1)."""
    where = f"{r.request.method} {str(r.request.url)[:300]}"
    assert r.status_code < 500, f"{where} -> {r.status_code} {r.text[:500]}"
    if r.status_code in (204, 304) or (r.status_code < 300 and not r.content):
        return
    if r.status_code in (307, 308):  # Starlette's redirect of a trailing slash ([base]/Patient/ -> /Patient)
        assert r.headers["location"], where
        return
    assert r.headers.get("content-type", "").startswith("application/fhir+json"), where
    body = r.json()
    assert isinstance(body, dict) and "resourceType" in body, where
    if r.status_code >= 400:
        assert body["resourceType"] == "OperationOutcome", f"{where} -> {body}"
        assert body["issue"] and all(i.get("code") and i.get("severity") for i in body["issue"]), body


# -- hostile JSON, built as text so that it can hold what no JSON library writes --

def _string(text: str) -> str:
    return json.dumps(text)


KEYS = st.sampled_from(['""', '"\\ud800"', '"\\udfff"', '"a\\u0000b"', '"resourceType"', '"id"', '"name"',
                        '"extension"', '"valueQuantity"', '"value"', '"meta"', '"contained"', '"birthDate"',
                        '"_birthDate"', '"gender"', '"status"', '"code"', '"subject"', '"text"']) | st.text(
    max_size=8).map(_string)
NUMBERS = st.sampled_from(["1e400", "-1e400", "1e-400", "18446744073709551616", "-18446744073709551617",
                           "9" * 400, "9" * 5000, "0.10", "-0", "1E+2", "2147483648", "-2147483649"]) | (
    st.integers().map(str)) | st.floats(allow_nan=False, allow_infinity=False).map(repr)
STRINGS = st.sampled_from(['"\\ud800"', '"\\u0000"', '"x\\udc00y"', '"\\ud83d\\ude00"', '"\\\\ud800"', '""',
                           '"1985-13-45"', '"Patient/p1"', '"<div>x</div>"']) | st.text(max_size=30).map(_string)
LEAVES = st.sampled_from(["null", "true", "false", "[]", "{}"]) | NUMBERS | STRINGS


def _object(members: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in members) + "}"


VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
                      | st.lists(st.tuples(KEYS, inner), max_size=4).map(_object), max_leaves=12)
DEEP = st.integers(50, 3000).map(lambda n: "[" * n + "]" * n) | st.integers(50, 400).map(
    lambda n: '{"extension":[' * n + "{}" + "]}" * n)
TYPES = st.sampled_from(["Patient", "Observation", "Bundle", "Parameters", "NotAType", "patient", "AuditEvent"])


@st.composite
def hostile_resources(draw: st.DrawFn) -> str:
    """A resource-shaped document with hostile members: duplicates, empty names, surrogates,
    numbers beyond a double, deep nesting, NUL, values of the wrong type."""
    members = [('"resourceType"', draw(TYPES.map(_string) | LEAVES))]
    members += draw(st.lists(st.tuples(KEYS, VALUES | DEEP), max_size=6))
    if draw(st.booleans()):
        members.append(draw(st.sampled_from(members)))  # a duplicate member
    return _object(draw(st.permutations(members)))


HOSTILE_BODIES = hostile_resources() | VALUES | DEEP | st.binary(max_size=64).map(
    lambda b: b.decode("latin-1"))


# -- hostile URLs --

def _segment(text: str) -> str:
    return quote(text, safe="")


NASTY = ["", "..", "%00", "\x00", "³", "٣", "-1", " ", "$validate", "_history", "_search", "a" * 65, "a" * 5000,
         "😀", "p1", "o1", "%", "%zz", "%ED%A0%80", "1e400", "99999999999999999999", "0", "*", "Patient/p1"]
IDS = st.sampled_from(NASTY) | st.text(max_size=70)
VERSIONS = st.sampled_from(["³", "٣", "-1", "0", "1", "2", "99999999999999999999", "18446744073709551616", "1e3",
                            " 1", "1.0", ""]) | st.integers().map(str) | st.text(max_size=12)
PARAM_NAMES = st.sampled_from(["name", "family", "birthdate", "gender", "_id", "_lastUpdated", "identifier",
                               "subject", "code", "value-quantity", "date", "patient", "general-practitioner",
                               "_has:Observation:subject:code", "subject:Patient.name", "subject.name",
                               "_sort", "_count", "_include", "_revinclude", "_include:iterate", "_summary",
                               "_elements", "_total", "_cursor", "_type", "_format", "_pretty", "_since", "_at",
                               "_list", "_text", "_content", "_query", "_filter"])
MODIFIERS = st.sampled_from(["", ":exact", ":contains", ":missing", ":not", ":text", ":above", ":below", ":in",
                             ":not-in", ":of-type", ":identifier", ":Patient", ":iterate", ":x", ":", "::",
                             ":" + "m" * 3000])
PREFIXES = st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz"])
SIMPLE_VALUES = st.sampled_from(["2025", "2025-13-45", "1e400", "-1e400", "18446744073709551616", "NaN", "inf",
                                 "Patient/p1", "p1", "http://loinc.org|8867-4", "|", "||", "a|b|c|d", "\\", "\\,",
                                 "$", "*", "Observation:subject", "*:*", "-name", "true", "0", "-1", "5|x|y",
                                 "\x00", "😀"]) | st.text(max_size=20)
VALUES_ = st.tuples(PREFIXES, SIMPLE_VALUES).map("".join) | st.lists(SIMPLE_VALUES, min_size=2, max_size=1200).map(
    ",".join) | st.integers(1, 20_000).map(lambda n: "a" * n)
PARAMS = st.lists(st.tuples(st.tuples(PARAM_NAMES | st.text(max_size=10), MODIFIERS).map("".join), VALUES_),
                  max_size=8) | st.integers(40, 400).map(lambda n: [("family", f"f{i}") for i in range(n)])


RAW = st.lists(st.sampled_from(["name=%ED%A0%80", "%ED%A0%80=x", "name=%zz", "%=%", "name=%00", "_count=%C2%B3",
                                "_count=99999999999999999999999", "_count=-1", "_since=%ED%A0%80", "&&", "=",
                                "name", "_sort=%2C%2C", "_cursor=AAAA", "_include=%00:%00"]), max_size=4)


def query(params: list[tuple[str, str]], raw: list[str] = ()) -> str:  # type: ignore[assignment]
    """The query string: names and values percent-encoded, then ``raw`` pieces as they are
    (broken escapes, an encoded lone surrogate ...)."""
    return "&".join([*(f"{quote(k, safe=':')}={quote(v, safe=',|:$')}" for k, v in params), *raw])
