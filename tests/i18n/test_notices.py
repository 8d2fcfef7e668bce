"""Notices carry every language: English, Russian and Kazakh in that order (docs/languages.md; TM-09, AC-02,
AC-18). The reader's language is not known when a notice is written to the outbox."""

from __future__ import annotations

import pytest

from fhir_server.i18n.notices import texts
from fhir_server.jobs.appointment_notices import notice
from fhir_server.jobs.messages import email_message, message_text
from fhir_server.security.audit.notify import break_glass_notice
from fhir_server.security.context import RequestContext

pytestmark = [pytest.mark.req("TM-09"), pytest.mark.req("AC-18")]


def _payload(communication: dict[str, object]) -> list[str]:
    items = communication["payload"]
    assert isinstance(items, list)
    return [item["contentString"] for item in items]


def test_an_appointment_notice_in_three_languages() -> None:
    appointment = {"resourceType": "Appointment", "id": "a1", "start": "2026-12-04T10:00:00+05:00",
                   "serviceType": [{"text": "терапевт"}]}
    en, ru, kk = _payload(notice("booked", appointment, "Patient/p1"))
    assert en == "Appointment booked: терапевт, 2026-12-04T10:00:00+05:00."
    assert ru == "Вы записаны: терапевт, 2026-12-04T10:00:00+05:00."
    assert kk == "Қабылдауға жазылдыңыз: терапевт, 2026-12-04T10:00:00+05:00."
    en, ru, kk = _payload(notice("cancelled", {"resourceType": "Appointment", "id": "a2"}, "Patient/p1"))
    assert en == "Appointment cancelled: consultation, time to be confirmed."
    assert ru == "Запись отменена: консультация, время будет уточнено."
    assert kk == "Қабылдауға жазылу жойылды: кеңес, уақыты кейін нақтыланады."


@pytest.mark.req("AC-02")
def test_a_break_glass_notice_in_three_languages() -> None:
    ctx = RequestContext(subject="dr1", role="practitioner", fhir_user="Practitioner/dr1",
                         organization_bin="940140000385", break_glass_reason="unconscious")
    en, ru, kk = _payload(break_glass_notice(ctx, "p1", ["Observation/o1"], sent=0))
    assert en.startswith("Emergency access to your medical data by Practitioner/dr1 (organisation BIN 940140000385)")
    assert ru.startswith("Экстренный доступ к вашим медицинским данным: Practitioner/dr1 (организация, БИН ")
    assert kk.startswith("Медициналық деректеріңізге шұғыл қол жеткізу: Practitioner/dr1 (ұйым, БСН 940140000385)")
    assert all(text.endswith("unconscious.") for text in (en, ru, kk))


def test_an_access_log_line_its_digest_and_e_mail() -> None:
    line = {"when": "2026-12-03T09:00:00Z", "who": "Practitioner/dr1", "action": "read",
            "what": ["Observation/o1"], "why": ["TREAT"], "breakGlassReason": "coma"}
    en, ru, kk = message_text(line)
    assert en == "2026-12-03T09:00:00Z: Practitioner/dr1 read Observation/o1; purpose: TREAT; emergency access, " \
                 "reason: coma."
    assert ru == "2026-12-03T09:00:00Z: Practitioner/dr1 — просмотр: Observation/o1; цель: TREAT; экстренный " \
                 "доступ, причина: coma."
    assert kk == "2026-12-03T09:00:00Z: Practitioner/dr1, Observation/o1 — қарау; мақсаты: TREAT; шұғыл қол " \
                 "жеткізу, себебі: coma."
    subject, body = email_message("notification", {"digest": True, "count": 2, "items": [line, line]})
    assert subject == "2 uses of your medical data / Использование ваших данных (раз: 2) / " \
                      "Медициналық деректеріңіз 2 рет пайдаланылды"
    assert body.count("қарау") == 2 and body.count("просмотр") == 2


def test_a_notice_written_before_kazakh_is_shown_as_it_is() -> None:
    old = {"resourceType": "Communication", "payload": [{"contentString": "E"}, {"contentString": "Р"}]}
    assert message_text(old) == texts(old["payload"]) == ("E", "Р", "Р")
    assert email_message("notification-urgent", old)[1] == "E\n\nР\n\n(notification-urgent)"
