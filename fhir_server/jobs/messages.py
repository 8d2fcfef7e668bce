"""Human-readable text of a patient notification (AC-18), in English and Russian.

Used for e-mail bodies and for the Communication view of ``Patient/{id}/$notifications``. The
payload of a ``notification`` message is an access-log line plus ``patient``; an urgent
(break-glass) message is a Communication that carries its own text; a digest holds ``items``.
"""

from __future__ import annotations

from typing import Any

_VERBS_EN = {"read": "read", "vread": "read", "create": "added", "update": "changed", "patch": "changed",
             "delete": "deleted", "search-type": "searched", "search-system": "searched",
             "history-instance": "read the history of", "operation": "used"}
_VERBS_RU = {"read": "просмотр", "vread": "просмотр", "create": "добавление", "update": "изменение",
             "patch": "изменение", "delete": "удаление", "search-type": "поиск", "search-system": "поиск",
             "history-instance": "просмотр истории", "operation": "использование"}


def patient_of(payload: dict[str, Any]) -> str | None:
    """``Patient/{id}`` a message is about: a line's ``patient``, a notice's subject, a digest's partition."""
    for candidate in (payload.get("patient"), (payload.get("subject") or {}).get("reference"),
                      payload.get("partition")):
        if isinstance(candidate, str) and candidate.startswith("Patient/"):
            return candidate
    return None


def line_text(line: dict[str, Any]) -> tuple[str, str]:
    """(English, Russian) sentence for one access-log line."""
    who = line.get("who") or "someone"
    org = f" (organisation {line['organization']})" if line.get("organization") else ""
    what = ", ".join(str(w) for w in line.get("what", [])) or "your data"
    action = str(line.get("action") or "operation")
    when = line.get("when", "")
    why = ", ".join(line.get("why", []))
    english = f"{when}: {who}{org} {_VERBS_EN.get(action, action)} {what}"
    russian = f"{when}: {who}{org} — {_VERBS_RU.get(action, action)}: {what}"
    if why:
        english += f"; purpose: {why}"
        russian += f"; цель: {why}"
    if line.get("breakGlassReason"):
        english += f"; emergency access, reason: {line['breakGlassReason']}"
        russian += f"; экстренный доступ, причина: {line['breakGlassReason']}"
    if line.get("outcome") not in (None, "success"):
        english += f" — {line['outcome']}"
        russian += f" — {line['outcome']}"
    return english + ".", russian + "."


def message_text(payload: dict[str, Any]) -> tuple[str, str]:
    """(English, Russian) text of any notification payload."""
    if payload.get("resourceType") == "Communication":
        texts = [p["contentString"] for p in payload.get("payload", [])
                 if isinstance(p.get("contentString"), str)]
        return (texts[0] if texts else "", texts[1] if len(texts) > 1 else (texts[0] if texts else ""))
    if payload.get("digest"):
        pairs = [message_text(item) for item in payload.get("items", []) if isinstance(item, dict)]
        return "\n".join(p[0] for p in pairs), "\n".join(p[1] for p in pairs)
    return line_text(payload)


def email_message(topic: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of the e-mail for a notification; a payload with its own ``subject`` and
    ``text`` strings (other topics) is sent as it is."""
    if isinstance(payload.get("text"), str) and isinstance(payload.get("subject"), str):
        return payload["subject"], payload["text"]
    english, russian = message_text(payload)
    about = [a.get("reference", "") for a in payload.get("about", []) or [] if isinstance(a, dict)]
    if payload.get("resourceType") == "Communication" and any(r.startswith("Appointment/") for r in about):
        subject = "Your appointment / Ваша запись на приём"
    elif payload.get("resourceType") == "Communication":
        subject = "Emergency access to your medical data / Экстренный доступ к вашим данным"
    elif payload.get("digest"):
        subject = f"{payload.get('count', 0)} uses of your medical data / Использование ваших данных"
    else:
        subject = "Use of your medical data / Использование ваших медицинских данных"
    return subject, f"{english}\n\n{russian}\n\n({topic})"
