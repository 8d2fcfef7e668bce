"""Human-readable text of a patient notification (AC-18), in English, Russian and Kazakh.

Used for e-mail bodies and for the Communication view of ``Patient/{id}/$notifications``. The
payload of a ``notification`` message is an access-log line plus ``patient``; an urgent
(break-glass) message is a Communication that carries its own texts; a digest holds ``items``. The
words are in the catalogues (fhir_server/i18n/messages, keys ``notice.*``; docs/languages.md).
"""

from __future__ import annotations

from typing import Any

from fhir_server.i18n import Language, msg
from fhir_server.i18n.notices import NOTICE_LANGUAGES, texts

#: access-log action -> catalogue key of what was done
_VERBS = {"read": "notice.verb_read", "vread": "notice.verb_read", "create": "notice.verb_create",
          "update": "notice.verb_update", "patch": "notice.verb_update", "delete": "notice.verb_delete",
          "search-type": "notice.verb_search", "search-system": "notice.verb_search",
          "history-instance": "notice.verb_history", "operation": "notice.verb_operation"}


def patient_of(payload: dict[str, Any]) -> str | None:
    """``Patient/{id}`` a message is about: a line's ``patient``, a notice's subject, a digest's partition."""
    for candidate in (payload.get("patient"), (payload.get("subject") or {}).get("reference"),
                      payload.get("partition")):
        if isinstance(candidate, str) and candidate.startswith("Patient/"):
            return candidate
    return None


def _line(line: dict[str, Any], lang: Language) -> str:
    who = line.get("who") or msg("notice.someone").localised(lang)
    org = msg("notice.organisation", organisation=line["organization"]).localised(lang) \
        if line.get("organization") else ""
    what = ", ".join(str(w) for w in line.get("what", [])) or msg("notice.your_data").localised(lang)
    action = str(line.get("action") or "operation")
    verb = msg(_VERBS[action]).localised(lang) if action in _VERBS else action
    text = msg("notice.access_line", when=line.get("when", ""), who=who, organisation=org, verb=verb,
               what=what).localised(lang)
    why = ", ".join(line.get("why", []))
    if why:
        text += msg("notice.purpose", why=why).localised(lang)
    if line.get("breakGlassReason"):
        text += msg("notice.emergency_reason", reason=line["breakGlassReason"]).localised(lang)
    if line.get("outcome") not in (None, "success"):
        text += f" — {line['outcome']}"
    return text + "."


def line_text(line: dict[str, Any]) -> tuple[str, ...]:
    """The sentence for one access-log line in each notice language (English, Russian, Kazakh)."""
    return tuple(_line(line, lang) for lang in NOTICE_LANGUAGES)


def message_text(payload: dict[str, Any]) -> tuple[str, ...]:
    """The text of any notification payload in each notice language (English, Russian, Kazakh)."""
    if payload.get("resourceType") == "Communication":
        return texts(payload.get("payload", []))
    if payload.get("digest"):
        parts = [message_text(item) for item in payload.get("items", []) if isinstance(item, dict)]
        return tuple("\n".join(p[i] for p in parts) for i in range(len(NOTICE_LANGUAGES)))
    return line_text(payload)


def email_message(topic: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of the e-mail for a notification; a payload with its own ``subject`` and
    ``text`` strings (other topics) is sent as it is."""
    if isinstance(payload.get("text"), str) and isinstance(payload.get("subject"), str):
        return payload["subject"], payload["text"]
    body = "\n\n".join(dict.fromkeys(message_text(payload)))  # a notice from before Kazakh: no repeat
    about = [a.get("reference", "") for a in payload.get("about", []) or [] if isinstance(a, dict)]
    if payload.get("resourceType") == "Communication" and any(r.startswith("Appointment/") for r in about):
        subject = msg("notice.subject_appointment")
    elif payload.get("resourceType") == "Communication":
        subject = msg("notice.subject_emergency")
    elif payload.get("digest"):
        subject = msg("notice.subject_digest", count=payload.get("count", 0))
    else:
        subject = msg("notice.subject_use")
    return " / ".join(subject.localised(lang) for lang in NOTICE_LANGUAGES), f"{body}\n\n({topic})"
