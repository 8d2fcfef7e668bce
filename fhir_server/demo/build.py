"""Write the Kazakhstan sample dataset into ``fhir_server/demo/data/``: ``python -m fhir_server.demo.build``.

The dataset is checked in as plain FHIR transaction Bundles (readable, loadable by any FHIR client);
this module is how it is made, so that every IIN and BIN in it is computed with the national check-digit
rule (``profiles/identifiers.py``, kz-domain.md §1.2-§1.4) rather than typed in. ``--check`` exits
non-zero when the committed files differ from what this module writes (the test suite compares too).

Dates are written around ``ANCHOR`` (a Monday); ``dataset.shift`` moves them by whole weeks to the week
the demo is loaded in, so Consents are current, last week's visits are in the past and next slots free.
"""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from profiles.identifiers import iin_check_digit

DATA = Path(__file__).parent / "data"
ANCHOR = date(2026, 1, 5)  # Monday of the demo's "current" week
TZ = "+05:00"
KZ = "https://fhir.kzfhir.kz"
IIN = f"{KZ}/sid/iin"
BIN = f"{KZ}/sid/bin"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

#: Every type the demo writes about a patient, and what the server records about them in the same
#: unit (monitoring alerts, notices): the Consent's list of data (AC-07, kz-cns-4).
CONSENTED_TYPES = ("Patient", "Consent", "Appointment", "Encounter", "Condition", "Observation", "Device",
                   "CareTeam", "CarePlan", "ServiceRequest", "Goal", "DetectedIssue", "Task", "Communication",
                   "Provenance")


def _check_digit(first11: str) -> str:
    digit = iin_check_digit(first11)
    if digit is None:
        raise ValueError(first11)
    return str(digit)


def make_iin(born: date, male: bool, serial: int) -> str:
    """The first issuable IIN from ``serial`` on: YYMMDD, century/sex digit, 4-digit serial, check digit."""
    century = {1800: 1, 1900: 3, 2000: 5}[born.year // 100 * 100] + (0 if male else 1)
    head = f"{born:%y%m%d}{century}"
    while iin_check_digit(f"{head}{serial:04d}") is None:
        serial += 1
    return f"{head}{serial:04d}" + _check_digit(f"{head}{serial:04d}")


def make_bin(registered: date, serial: int) -> str:
    """A BIN of a resident legal entity's head unit (kind 4, attribute 0) registered in that month."""
    head = f"{registered:%y%m}40"
    while iin_check_digit(f"{head}{serial:05d}") is None:
        serial += 1
    return f"{head}{serial:05d}" + _check_digit(f"{head}{serial:05d}")


def _at(day: int, time: str) -> str:
    """A dateTime ``day`` days from the anchor (negative: before it), Kazakhstan time."""
    return f"{ANCHOR + timedelta(days=day)}T{time}:00{TZ}"


def _day(day: int) -> str:
    return str(ANCHOR + timedelta(days=day))


def _profile(name: str) -> dict[str, Any]:
    return {"profile": [f"{KZ}/StructureDefinition/{name}"]}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _kz(extension: str, code_system: str, code: str) -> dict[str, Any]:
    return {"url": f"{KZ}/StructureDefinition/{extension}",
            "valueCoding": _coding(f"{KZ}/CodeSystem/{code_system}", code)}


def _person_name(family: str, given: str, patronymic: str) -> list[dict[str, Any]]:
    return [{"use": "official", "family": family, "given": [given],
             "extension": [{"url": f"{KZ}/StructureDefinition/kz-patronymic", "valueString": patronymic}]}]


def _iin_identifier(value: str) -> list[dict[str, Any]]:
    return [{"use": "official", "type": {"coding": [_coding(V2_0203, "NI")]}, "system": IIN, "value": value}]


ORGANIZATIONS = [  # id, name, city, registered, serial
    ("demo-org-polyclinic", "ГКП на ПХВ «Городская поликлиника №5» УОЗ г. Алматы", "Алматы", date(2007, 5, 1), 3121),
    ("demo-org-cardio", "АО «Национальный научный кардиохирургический центр»", "Астана", date(2011, 3, 1), 1544),
    ("demo-org-telemed", "ТОО «Qazaq Telemed» (МИС и телемедицина)", "Астана", date(2019, 9, 1), 27013),
]
PRACTITIONERS = [  # id, family, given, patronymic, born, male, serial, speciality, organisation
    ("demo-dr-therapist", "Ахметова", "Алия", "Сериковна", date(1984, 6, 2), False, 1207, "Участковый терапевт",
     "demo-org-polyclinic"),
    ("demo-dr-cardiologist", "Нурланов", "Ерлан", "Бауыржанұлы", date(1979, 10, 19), True, 3310, "Кардиолог",
     "demo-org-cardio"),
    ("demo-dr-gp", "Ким", "Виктор", "Андреевич", date(1988, 1, 27), True, 542, "Врач общей практики",
     "demo-org-polyclinic"),
    ("demo-nurse", "Жумабаева", "Гульнара", "Маратовна", date(1992, 12, 8), False, 2218,
     "Медицинская сестра дистанционного наблюдения", "demo-org-telemed"),
]
#: id, family, given, patronymic, born, male, serial, phone, condition (ICD-10, text), monitored
PATIENTS = [
    ("demo-patient-1", "Серікбаев", "Асхат", "Маратұлы", date(1958, 4, 12), True, 4471, "+77011230001",
     ("I10", "Эссенциальная (первичная) гипертензия"), True),
    ("demo-patient-2", "Ахметова", "Динара", "Болатовна", date(1990, 7, 21), False, 1902, "+77011230002",
     ("J06.9", "Острая инфекция верхних дыхательных путей неуточнённая"), False),
    ("demo-patient-3", "Ким", "Сергей", "Владимирович", date(1967, 11, 3), True, 6620, "+77011230003",
     ("I50.0", "Застойная сердечная недостаточность"), True),
    ("demo-patient-4", "Жақсыбекова", "Айгерім", "Нұрланқызы", date(2001, 2, 14), False, 318, "+77011230004",
     ("J20.9", "Острый бронхит неуточнённый"), False),
    ("demo-patient-5", "Иванова", "Ольга", "Петровна", date(1949, 9, 30), False, 5077, "+77011230005",
     ("I25.1", "Атеросклеротическая болезнь сердца"), False),
    ("demo-patient-6", "Тоқтаров", "Нұрсұлтан", "Ержанұлы", date(1996, 5, 5), True, 2890, "+77011230006",
     ("E11.9", "Сахарный диабет 2 типа без осложнений"), False),
]
#: schedule id, practitioner, service code, service display, location
SCHEDULES = [
    ("demo-schedule-therapist", "demo-dr-therapist", "tm-consult-therapist",
     "Дистанционная консультация участкового терапевта", "demo-location-polyclinic"),
    ("demo-schedule-cardiologist", "demo-dr-cardiologist", "tm-consult-cardiologist",
     "Дистанционная консультация кардиолога", "demo-location-cardio"),
    ("demo-schedule-gp", "demo-dr-gp", "tm-consult-gp", "Дистанционная консультация врача общей практики",
     "demo-location-polyclinic"),
]
SLOT_TIMES = ("09:00", "09:20", "09:40", "10:00", "10:20", "10:40")
SLOT_DAYS = (0, 1, 2, 3, 4)  # Monday to Friday of the current week


def _doctor(pid: str) -> str:
    family, given, patronymic = next(p[1:4] for p in PRACTITIONERS if p[0] == pid)
    return f"{family} {given} {patronymic}"


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}}


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [_entry(r) for r in resources]}


def organization_bins() -> dict[str, str]:
    return {oid: make_bin(registered, serial) for oid, _, _, registered, serial in ORGANIZATIONS}


def _end(time: str) -> str:
    hours, minutes = map(int, time.split(":"))
    minutes += 20
    return f"{hours + minutes // 60:02d}:{minutes % 60:02d}"


def _slot_id(schedule: str, day: int, time: str) -> str:
    return f"{schedule.removeprefix('demo-schedule-')}-d{day}-{time.replace(':', '')}"


def _booked() -> dict[str, tuple[str, int, str]]:
    """Patient -> (schedule, day, time) of their upcoming appointment; those slots are busy."""
    out = {}
    for n, patient in enumerate(PATIENTS):
        schedule = SCHEDULES[1] if patient[9] else SCHEDULES[n % 2 * 2]
        out[patient[0]] = (schedule[0], SLOT_DAYS[n % len(SLOT_DAYS)], SLOT_TIMES[n % len(SLOT_TIMES)])
    return out


def directory() -> dict[str, Any]:
    """Organisations, practitioners and their roles, locations, schedules and slots."""
    bins = organization_bins()
    resources: list[dict[str, Any]] = []
    for oid, name, city, _, _ in ORGANIZATIONS:
        resources.append({"resourceType": "Organization", "id": oid, "meta": _profile("kz-organization"),
                          "identifier": [{"type": {"coding": [_coding(V2_0203, "XX")]}, "system": BIN,
                                          "value": bins[oid]}],
                          "active": True, "name": name, "address": [{"city": city, "country": "KZ"}]})
    for lid, oid, name, city in (("demo-location-polyclinic", "demo-org-polyclinic", "Поликлиника №5, ул. Жандосова 6",
                                  "Алматы"),
                                 ("demo-location-cardio", "demo-org-cardio", "ННКЦ, пр. Туран 38", "Астана")):
        resources.append({"resourceType": "Location", "id": lid, "status": "active", "name": name,
                          "address": {"city": city, "country": "KZ"}, "managingOrganization": {"reference":
                                                                                                f"Organization/{oid}"}})
    for pid, family, given, patronymic, born, male, serial, speciality, oid in PRACTITIONERS:
        resources.append({"resourceType": "Practitioner", "id": pid, "meta": _profile("kz-practitioner"),
                          "identifier": _iin_identifier(make_iin(born, male, serial)), "active": True,
                          "name": _person_name(family, given, patronymic), "gender": "male" if male else "female",
                          "qualification": [{"code": {"text": speciality}}]})
        resources.append({"resourceType": "PractitionerRole", "id": f"{pid}-role", "active": True,
                          "practitioner": {"reference": f"Practitioner/{pid}"},
                          "organization": {"reference": f"Organization/{oid}"},
                          "specialty": [{"text": speciality}]})
    busy = {(s, d, t) for s, d, t in _booked().values()}
    for sid, pid, code, display, lid in SCHEDULES:
        service = [{"coding": [_coding(f"{KZ}/CodeSystem/kz-service", code, display)]}]
        resources.append({"resourceType": "Schedule", "id": sid, "active": True, "serviceType": service,
                          "actor": [{"reference": f"Practitioner/{pid}"}, {"reference": f"Location/{lid}"}],
                          "planningHorizon": {"start": _at(SLOT_DAYS[0], "09:00"),
                                              "end": _at(SLOT_DAYS[-1], "11:00")}})
        for day in SLOT_DAYS:
            for time in SLOT_TIMES:
                resources.append({"resourceType": "Slot", "id": _slot_id(sid, day, time),
                                  "schedule": {"reference": f"Schedule/{sid}"}, "serviceType": service,
                                  "status": "busy" if (sid, day, time) in busy else "free",
                                  "start": _at(day, time), "end": _at(day, _end(time))})
    return _bundle(resources)


def _consent(pid: str, name: str) -> dict[str, Any]:
    """The patient's access Consent (kz-consent, AC-01/AC-07): the three organisations (by BIN) and the
    demo's practitioners may record and read the data listed, for treatment and operations."""
    bins = organization_bins()
    actors: list[dict[str, Any]] = [{"identifier": {"system": BIN, "value": bins[oid]}} for oid, *_ in ORGANIZATIONS]
    actors += [{"reference": f"Practitioner/{p[0]}"} for p in PRACTITIONERS]
    role = {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")]}
    return {
        "resourceType": "Consent", "id": f"{pid}-consent", "meta": _profile("kz-consent"),
        "extension": [
            {"url": f"{KZ}/StructureDefinition/kz-data-location", "valueString": "Республика Казахстан, г. Астана"},
            {"url": f"{KZ}/StructureDefinition/kz-processing-methods",
             "valueString": "Автоматизированная обработка в МИС, дистанционное наблюдение, передача в ЭПЗ"},
            {"url": f"{KZ}/StructureDefinition/kz-revocation-procedure",
             "valueString": "Отзыв в личном кабинете или письменное заявление в регистратуру"},
            {"url": f"{KZ}/StructureDefinition/kz-responsible-employee",
             "valueReference": {"reference": "Practitioner/demo-dr-therapist"}}],
        "status": "active",
        "scope": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")]},
        "category": [{"coding": [_coding(LOINC, "59284-0", "Patient Consent")]}],
        "patient": {"reference": f"Patient/{pid}", "display": name},
        "dateTime": _at(-14, "09:00"),
        "performer": [{"reference": f"Patient/{pid}"}],
        "organization": [{"reference": "Organization/demo-org-polyclinic"}],
        "sourceAttachment": {"contentType": "application/pdf", "title": "Подписанное согласие (ЭЦП)",
                             "creation": _at(-14, "09:00")},
        "policy": [{"authority": "https://adilet.zan.kz", "uri": "https://adilet.zan.kz/rus/docs/V2100023370"}],
        "provision": {
            "type": "permit",
            "period": {"start": _day(-14), "end": _day(351)},
            "actor": [{"role": role, "reference": actor} for actor in actors],
            "action": [{"coding": [_coding(CONSENT_ACTION, code)]} for code in ("collect", "access", "use", "correct")],
            "purpose": [_coding(ACT_REASON, code) for code in ("TREAT", "HOPERAT")],
            "class": [_coding("http://hl7.org/fhir/resource-types", t) for t in CONSENTED_TYPES],
        },
    }


def _vital(oid: str, pid: str, code: str, display: str, value: float, unit: str, ucum: str, at: str,
           device: str | None) -> dict[str, Any]:
    method = "device-automatic" if device else "manual-practitioner"
    out: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "meta": _profile("kz-observation-vitals"),
        "extension": [_kz("kz-observation-entry-method", "kz-observation-entry-method", method)],
        "status": "final",
        "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/observation-category",
                                         "vital-signs")]}],
        "code": {"coding": [_coding(LOINC, code, display)]}, "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": at, "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum}}
    if device:
        out["device"] = {"reference": f"Device/{device}"}
    else:
        out["performer"] = [{"reference": "Practitioner/demo-dr-therapist"}]
    return out


def _monitoring(pid: str, n: int, condition: str, hypertension: bool) -> list[dict[str, Any]]:
    """A remote-monitoring plan (TM-25): care team, order, plan, goal with limits, device and its readings;
    the last reading is outside the limits, so the server raises its alert (TM-26)."""
    team, order, plan, goal, device = (f"{pid}-{s}" for s in ("careteam", "monitoring", "careplan", "goal", "device"))
    code = "tm-monitoring-hypertension" if hypertension else "tm-monitoring-heart-failure"
    display = ("Дистанционное наблюдение пациента с артериальной гипертензией" if hypertension
               else "Дистанционное наблюдение пациента с хронической сердечной недостаточностью")
    measure = ("8480-6", "Systolic blood pressure", "mm[Hg]", "mm[Hg]", 90, 150) if hypertension else \
        ("8867-4", "Heart rate", "beats/minute", "/min", 50, 110)
    readings = (132, 138, 129, 141, 136, 144, 183) if hypertension else (72, 78, 69, 84, 75, 81, 124)
    resources: list[dict[str, Any]] = [
        {"resourceType": "CareTeam", "id": team, "status": "active", "name": "Команда дистанционного наблюдения",
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": _day(-10)},
         "participant": [{"member": {"reference": "Practitioner/demo-dr-cardiologist"}},
                         {"member": {"reference": "Practitioner/demo-nurse"}}]},
        {"resourceType": "ServiceRequest", "id": order, "meta": _profile("kz-servicerequest"),
         "status": "active", "intent": "order",
         "category": [{"coding": [_coding(f"{KZ}/CodeSystem/kz-remote-service-form", "remote-monitoring")]}],
         "code": {"coding": [_coding(f"{KZ}/CodeSystem/kz-service", code, display)]},
         "subject": {"reference": f"Patient/{pid}"}, "authoredOn": _at(-10, "10:30"),
         "requester": {"reference": "Practitioner/demo-dr-cardiologist"},
         "performer": [{"reference": f"CareTeam/{team}"}],
         "reasonReference": [{"reference": f"Condition/{condition}"}],
         "occurrencePeriod": {"start": _day(-10), "end": _day(80)}},
        {"resourceType": "Goal", "id": goal, "lifecycleStatus": "active",
         "description": {"text": f"{measure[1]}: {measure[4]}–{measure[5]} {measure[2]}"},
         "subject": {"reference": f"Patient/{pid}"}, "expressedBy": {"reference": "Practitioner/demo-dr-cardiologist"},
         "target": [{"measure": {"coding": [_coding(LOINC, measure[0], measure[1])]},
                     "detailRange": {"low": {"value": measure[4], "unit": measure[2], "system": UCUM,
                                             "code": measure[3]},
                                     "high": {"value": measure[5], "unit": measure[2], "system": UCUM,
                                              "code": measure[3]}}}]},
        {"resourceType": "CarePlan", "id": plan, "status": "active", "intent": "plan", "title": display,
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": _day(-10), "end": _day(80)},
         "author": {"reference": "Practitioner/demo-dr-cardiologist"},
         "careTeam": [{"reference": f"CareTeam/{team}"}], "addresses": [{"reference": f"Condition/{condition}"}],
         "goal": [{"reference": f"Goal/{goal}"}],
         "activity": [{"reference": {"reference": f"ServiceRequest/{order}"}}]},
        {"resourceType": "Device", "id": device, "status": "active",
         "deviceName": [{"name": "Тонометр" if hypertension else "Пульсометр", "type": "user-friendly-name"}],
         "patient": {"reference": f"Patient/{pid}"}},
    ]
    for day, value in enumerate(readings):
        resources.append(_vital(f"{pid}-reading-{day + 1}", pid, measure[0], measure[1], value, measure[2],
                                measure[3], _at(day - 7, f"0{7 + n % 2}:30"), device))
    return resources


def patient_bundle(n: int) -> dict[str, Any]:
    pid, family, given, patronymic, born, male, serial, phone, (icd, icd_text), monitored = PATIENTS[n]
    iin = make_iin(born, male, serial)
    name = f"{family} {given} {patronymic}"
    condition, past, upcoming, encounter = (f"{pid}-{s}" for s in ("condition", "visit-past", "visit-next",
                                                                   "encounter"))
    booked_schedule, booked_day, booked_time = _booked()[pid]
    schedule = next(s for s in SCHEDULES if s[0] == booked_schedule)
    past_service = _coding(f"{KZ}/CodeSystem/kz-service", "tm-consult-therapist",
                           "Дистанционная консультация участкового терапевта")
    patient_actor = {"reference": f"Patient/{pid}", "type": "Patient", "identifier": {"system": IIN, "value": iin},
                     "display": name}
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "meta": _profile("kz-patient"), "identifier": _iin_identifier(iin),
         "active": True, "name": _person_name(family, given, patronymic),
         "telecom": [{"system": "phone", "value": phone, "use": "mobile"}], "gender": "male" if male else "female",
         "birthDate": str(born), "address": [{"city": "Алматы" if n % 2 == 0 else "Астана", "country": "KZ"}],
         "generalPractitioner": [{"reference": "Practitioner/demo-dr-therapist"}],
         "managingOrganization": {"reference": "Organization/demo-org-polyclinic"}},
        _consent(pid, name),
        {"resourceType": "Condition", "id": condition,
         "clinicalStatus": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active")]},
         "verificationStatus": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                   "confirmed")]},
         "code": {"coding": [_coding(ICD10, icd, icd_text)], "text": icd_text},
         "subject": {"reference": f"Patient/{pid}"}, "recordedDate": _at(-7, "10:15"),
         "recorder": {"reference": "Practitioner/demo-dr-therapist"}},
        {"resourceType": "Appointment", "id": past, "meta": _profile("kz-appointment"),
         "extension": [_kz("kz-funding-source", "kz-funding-source", "gobmp"),
                       _kz("kz-telecom-channel", "kz-telecom-channel", "video")],
         "status": "fulfilled", "serviceType": [{"coding": [past_service]}],
         "start": _at(-7, "10:00"), "end": _at(-7, "10:20"),
         "participant": [{"actor": patient_actor, "status": "accepted"},
                         {"actor": {"reference": "Practitioner/demo-dr-therapist",
                                    "display": _doctor("demo-dr-therapist")}, "status": "accepted"}]},
        {"resourceType": "Encounter", "id": encounter, "meta": _profile("kz-encounter-remote"),
         "extension": [_kz("kz-remote-service-form", "kz-remote-service-form", "consultation"),
                       _kz("kz-telecom-channel", "kz-telecom-channel", "video"),
                       {"url": f"{KZ}/StructureDefinition/kz-next-visit-date", "valueDate": _day(booked_day)},
                       _kz("kz-funding-source", "kz-funding-source", "gobmp")],
         "status": "finished", "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "VR", "virtual"),
         "serviceType": {"coding": [past_service]}, "subject": {"reference": f"Patient/{pid}", "display": name},
         "participant": [{"individual": {"reference": "Practitioner/demo-dr-therapist"}}],
         "appointment": [{"reference": f"Appointment/{past}"}],
         "period": {"start": _at(-7, "10:00"), "end": _at(-7, "10:18")},
         "diagnosis": [{"extension": [_kz("kz-diagnosis-kind", "kz-diagnosis-kind", "main"),
                                      _kz("kz-diagnosis-type", "kz-diagnosis-type", "final")],
                        "condition": {"reference": f"Condition/{condition}"}, "rank": 1}],
         "serviceProvider": {"reference": "Organization/demo-org-polyclinic"}},
        _vital(f"{pid}-pulse", pid, "8867-4", "Heart rate", 70 + n * 3, "beats/minute", "/min", _at(-7, "10:05"), None),
        {"resourceType": "Appointment", "id": upcoming, "meta": _profile("kz-appointment"),
         "extension": [_kz("kz-funding-source", "kz-funding-source", "gobmp"),
                       _kz("kz-telecom-channel", "kz-telecom-channel", "video")],
         "status": "booked", "serviceType": [{"coding": [_coding(f"{KZ}/CodeSystem/kz-service", schedule[2],
                                                                  schedule[3])]}],
         "slot": [{"reference": f"Slot/{_slot_id(booked_schedule, booked_day, booked_time)}"}],
         "start": _at(booked_day, booked_time), "end": _at(booked_day, _end(booked_time)),
         "participant": [{"actor": patient_actor, "status": "accepted"},
                         {"actor": {"reference": f"Practitioner/{schedule[1]}", "display": _doctor(schedule[1])},
                          "status": "accepted"}]},
    ]
    if monitored:  # the follow-up is part of the monitoring order
        resources[-1]["basedOn"] = [{"reference": f"ServiceRequest/{pid}-monitoring"}]
        resources += _monitoring(pid, n, condition, hypertension=icd.startswith("I1"))
    return _bundle(resources)


def dataset() -> dict[str, dict[str, Any]]:
    """File name -> content of every data file."""
    files = {"directory.json": directory()}
    files.update({f"{p[0]}.json": patient_bundle(n) for n, p in enumerate(PATIENTS)})
    return files


def _text(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    DATA.mkdir(exist_ok=True)
    for name, content in dataset().items():
        path = DATA / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != _text(content):
                stale.append(name)
        else:
            path.write_text(_text(content), encoding="utf-8")
    if stale:
        print("stale demo data (run python -m fhir_server.demo.build): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
