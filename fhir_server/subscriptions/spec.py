"""What a Subscription asks for, read and checked at create and update (Subscriptions Backport IG 1.1.0,
profile ``backport-subscription``).

Two kinds of ``criteria``: the canonical URL of a topic (the IG's topic-based subscription), or a
classic R4 search expression ``[type]?[parameters]`` (R4 subscription.html: "the same interpretation as
if they were appended to the base URL"), parsed here by the search parser itself so that a criteria
the search engine would refuse is refused at create, and matched later by the same engine
(matching.py).

Anything this server cannot honour is refused with 422 and an OperationOutcome whose expression names
the element: a topic it does not know, a filter the topic does not declare, a search it cannot run, a
channel other than ``rest-hook`` and ``websocket``, a payload content other than ``empty`` /
``id-only`` / ``full-resource``, a MIME type other than FHIR JSON, a rest-hook endpoint that is not an
absolute http(s) URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhir_server.errors import FhirError
from fhir_server.search.parse import parse_search
from fhir_server.subscriptions.topics import topics

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
FILTER_CRITERIA = f"{BACKPORT}/backport-filter-criteria"
PAYLOAD_CONTENT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT_PERIOD = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT = f"{BACKPORT}/backport-timeout"
MAX_COUNT = f"{BACKPORT}/backport-max-count"
CONTENTS = ("empty", "id-only", "full-resource")
MIME_TYPES = ("application/fhir+json", "application/json")
DEFAULT_TIMEOUT = 10  # seconds for one delivery attempt
MAX_TIMEOUT = 60
CHANNELS = ("rest-hook", "websocket")
#: search result controls: they shape a page of results, they do not say which resources match
RESULT_CONTROLS = frozenset({"_sort", "_count", "_include", "_revinclude", "_summary", "_elements", "_total",
                             "_cursor", "_contained", "_containedType", "_format", "_pretty"})
Classic = tuple[str, tuple[tuple[str, str], ...]]  # (resource type, search parameters)


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    topic: str
    filters: tuple[tuple[str, str, tuple[str, ...]], ...]  # (resource type, parameter, values)
    channel: str
    endpoint: str
    content: str
    headers: tuple[tuple[str, str], ...]
    heartbeat: int | None
    timeout: int
    classic: Classic | None = None  # a classic R4 search criteria instead of a topic (topic is then "")

    def channel_key(self) -> tuple[Any, ...]:
        """What a new handshake is needed for when it changes."""
        return self.topic, self.channel, self.endpoint, self.headers


def unprocessable(message: str, expression: str, code: str = "value") -> FhirError:
    return FhirError("unprocessable", message, code=code, expression=expression)


def _extensions(element: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(element, dict):
        return []
    return [e for e in element.get("extension", []) or [] if isinstance(e, dict) and e.get("url") == url]


def _filters(resource: dict[str, Any], topic: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    declared = topics()[topic].filters
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for i, ext in enumerate(_extensions(resource.get("_criteria"), FILTER_CRITERIA)):
        where = f"Subscription.criteria.extension[{i}]"
        text = ext.get("valueString")
        if not isinstance(text, str) or "?" not in text:
            raise unprocessable("backport-filter-criteria must be a string [type]?[parameter]=[value]", where)
        rtype, _, query = text.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        if not pairs:
            raise unprocessable(f"filter {text!r} has no parameter", where)
        for name, value in pairs:
            if (rtype, name) not in declared:
                allowed = ", ".join(sorted(f"{t}?{p}" for t, p in declared))
                raise unprocessable(f"topic {topic} does not declare the filter {rtype}?{name} (it declares {allowed})",
                                    where, code="not-supported")
            values = tuple(v for v in value.split(",") if v)
            if not values:
                raise unprocessable(f"filter {rtype}?{name} has no value", where)
            out.append((rtype, name, values))
    return tuple(out)


def _positive(channel: dict[str, Any], url: str, what: str, maximum: int | None = None) -> int | None:
    found = _extensions(channel, url)
    if not found:
        return None
    value = found[0].get("valueUnsignedInt", found[0].get("valuePositiveInt"))
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or (maximum is not None and value > maximum):
        limit = f" (at most {maximum})" if maximum is not None else ""
        raise unprocessable(f"{what} must be a positive number of seconds{limit}", "Subscription.channel.extension")
    return value


def _classic(criteria: str) -> Classic | None:
    """A classic search criteria ``Type?a=b&c=d``, checked by the search parser (None: not one)."""
    if criteria.startswith(("http://", "https://", "urn:")):
        return None
    rtype, _, query = criteria.partition("?")
    if not rtype.isalpha() or not rtype[:1].isupper():
        return None
    if rtype == "Subscription":  # its own status changes would be its events: a loop of notifications
        raise unprocessable("a classic criteria may not watch Subscriptions", "Subscription.criteria",
                            code="not-supported")
    pairs = tuple(parse_qsl(query, keep_blank_values=True))
    for name, _value in pairs:
        if name.split(":", 1)[0] in RESULT_CONTROLS:
            raise unprocessable(f"{name} shapes search results; a subscription criteria only says what matches",
                                "Subscription.criteria", code="not-supported")
    try:
        parse_search(rtype, [*pairs, ("_id", "x")], strict=True)
    except FhirError as exc:
        code = exc.issues[0].code if exc.issues else "value"
        raise unprocessable(f"criteria {criteria!r} is not a search this server can run: {exc.message}",
                            "Subscription.criteria", code=code) from exc
    return rtype, pairs


def read_spec(resource: dict[str, Any]) -> SubscriptionSpec:
    """The Subscription's request, or 422 naming what this server does not support."""
    criteria = resource.get("criteria")
    known = topics()
    if not isinstance(criteria, str) or not criteria:
        raise unprocessable("criteria is required", "Subscription.criteria", code="required")
    classic = None if criteria.split("|", 1)[0] in known else _classic(criteria)
    if classic is None and criteria.split("|", 1)[0] not in known:
        raise unprocessable(f"criteria must be the canonical URL of a SubscriptionTopic this server supports "
                            f"({', '.join(sorted(known))}) or a search [type]?[parameters]",
                            "Subscription.criteria", code="not-supported")
    topic = "" if classic is not None else criteria.split("|", 1)[0]
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        raise unprocessable("channel is required", "Subscription.channel", code="required")
    kind = channel.get("type")
    if kind not in CHANNELS:
        raise unprocessable(f"channel type {kind!r} is not supported: this server delivers rest-hook and websocket",
                            "Subscription.channel.type", code="not-supported")
    endpoint = channel.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if kind == "websocket":
        endpoint = ""  # the client connects to the server (websocket.py); an endpoint is not used
    elif parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise unprocessable("a rest-hook channel needs an absolute http(s) endpoint URL",
                            "Subscription.channel.endpoint")
    mime = channel.get("payload")
    if mime is not None and mime not in MIME_TYPES:
        raise unprocessable(f"payload {mime!r} is not supported: use application/fhir+json",
                            "Subscription.channel.payload", code="not-supported")
    content_ext = _extensions(channel.get("_payload"), PAYLOAD_CONTENT)
    if classic is not None:
        # R4: a payload MIME type means the resource is sent, none means an empty notification
        content_ext = []
    content = content_ext[0].get("valueCode") if content_ext else (
        ("full-resource" if classic is not None else "id-only") if mime else "empty")
    if content not in CONTENTS:
        raise unprocessable(f"payload content {content!r} is not supported (empty, id-only, full-resource)",
                            "Subscription.channel.payload.extension", code="not-supported")
    if content != "empty" and mime is None:
        raise unprocessable(f"payload content {content} needs channel.payload application/fhir+json",
                            "Subscription.channel.payload", code="required")
    headers: list[tuple[str, str]] = []
    for i, header in enumerate(channel.get("header", []) or []):
        name, sep, value = str(header).partition(":")
        if not sep or not name.strip() or "\n" in header or "\r" in header:
            raise unprocessable("a channel header is 'Name: value'", f"Subscription.channel.header[{i}]")
        headers.append((name.strip(), value.strip()))
    heartbeat = _positive(channel, HEARTBEAT_PERIOD, "backport-heartbeat-period")
    timeout = _positive(channel, TIMEOUT, "backport-timeout", MAX_TIMEOUT) or DEFAULT_TIMEOUT
    filters = _filters(resource, topic) if classic is None else ()
    return SubscriptionSpec(topic, filters, str(kind), str(endpoint), str(content),
                            tuple(headers) if kind == "rest-hook" else (), heartbeat, timeout, classic)
