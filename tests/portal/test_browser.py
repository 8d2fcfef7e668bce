"""The portal in a real Chromium (headless, Selenium; one server and one browser for the module): signing in
with a test EDS certificate, the records, a consent given and revoked and a practitioner's page changing with
it, the access log showing that practitioner's reads, a request filed and answered from the console, the
language switch; axe-core on every page (no serious or critical violation), a screenshot of each."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from signing import load_signer, sign_cms
from tests.portal.browser import (  # noqa: F401 (fixtures)
    as_patient,
    check_page,
    driver,
    live,
    ncalayer,
    set_value,
    shoot,
    sign_in,
    wait_for,
)

pytestmark = pytest.mark.slow


def pulse_items(driver) -> int:  # noqa: F811
    return len(driver.find_elements(By.CSS_SELECTOR, "#list-Observation li"))


@pytest.mark.req("TM-12")
@pytest.mark.req("TM-04")
def test_a_patient_signs_in_with_the_eds_certificate_and_reads_the_records(driver, live):  # noqa: F811
    driver.get(f"{live.base}/portal/")
    check_page(driver, "home")
    sign_in(driver, live)
    assert driver.current_url.endswith("/portal/records")
    assert driver.find_element(By.TAG_NAME, "h1").text == "My records"
    chart = driver.find_element(By.CSS_SELECTOR, "svg.chart")
    assert chart.get_attribute("role") == "img"
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart circle")) == 4
    assert len(driver.find_elements(By.CSS_SELECTOR, "tr.bad")) == 1  # 131/min against the Goal's 50-120
    body = driver.find_element(By.TAG_NAME, "main").text
    assert "Cardiology visit" in body and "Essential hypertension" in body and "Amlodipine 5 mg" in body
    check_page(driver, "records")
    driver.get(f"{live.base}/portal/notifications")
    check_page(driver, "notifications")
    driver.set_window_size(390, 844)  # a phone
    driver.get(f"{live.base}/portal/records")
    check_page(driver, "records-phone")
    driver.set_window_size(1280, 1000)


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-24")
@pytest.mark.req("TM-18")
def test_a_consent_given_and_revoked_changes_the_practitioners_page_and_the_log_shows_the_reads(driver, live):  # noqa: F811
    sign_in(driver, live)
    driver.get(f"{live.base}/portal/consents")
    driver.find_element(By.CSS_SELECTOR, "input[name='grantee_kind'][value='practitioner']").click()
    driver.find_element(By.ID, "grantee").send_keys("dr1")
    driver.find_element(By.CSS_SELECTOR, "input[name='classes'][value='Observation']").click()
    driver.find_element(By.CSS_SELECTOR, "form[action$='/consents/give'] button[type='submit']").click()
    wait_for(driver, "form[action$='/revoke']")
    assert "Practitioner/dr1" in driver.find_element(By.TAG_NAME, "table").text
    check_page(driver, "consents")

    sign_in(driver, live, "dr.serik")
    driver.get(f"{live.base}/portal/console/patient?id=p1")
    assert pulse_items(driver) == 4
    check_page(driver, "practitioner-patient-view")

    sign_in(driver, live)
    driver.get(f"{live.base}/portal/consents")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/revoke'] button").click()
    wait_for(driver, "table")
    assert not driver.find_elements(By.CSS_SELECTOR, "form[action$='/revoke']")

    sign_in(driver, live, "dr.serik")
    driver.get(f"{live.base}/portal/console/patient?id=p1")
    assert pulse_items(driver) == 0 and driver.find_elements(By.CSS_SELECTOR, "p.empty")

    sign_in(driver, live)
    driver.get(f"{live.base}/portal/access-log")
    log = driver.find_element(By.CSS_SELECTOR, "table.log").text
    assert "Practitioner/dr1 (practitioner)" in log
    check_page(driver, "access-log")
    shoot(driver, "access-log-first-screen", full=False)
    driver.find_element(By.CSS_SELECTOR, "#only option[value='refused']").click()
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(driver, "main h1")
    assert "only=refused" in driver.current_url
    assert "Practitioner/dr1" in driver.find_element(By.TAG_NAME, "main").text  # after the revocation: refused


@pytest.mark.req("AC-15")
@pytest.mark.req("AC-27")
@pytest.mark.req("AC-18")
def test_a_request_is_filed_and_the_console_answers_it(driver, live):  # noqa: F811
    sign_in(driver, live)
    driver.get(f"{live.base}/portal/requests")
    driver.find_element(By.CSS_SELECTOR, "input[name='kind'][value='correction']").click()
    driver.find_element(By.ID, "description").send_keys("Browser: wrong pulse on 3 November")
    driver.find_element(By.ID, "change").send_keys("It was 113, not 131")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/requests/file'] button").click()
    wait_for(driver, "p.notice")
    row = driver.find_element(By.XPATH, "//tr[contains(., 'Browser: wrong pulse')]")
    assert "waiting for the answer" in row.text
    check_page(driver, "requests")

    sign_in(driver, live, "admin1")
    row = driver.find_element(By.XPATH, "//tr[contains(., 'Browser: wrong pulse')]")
    check_page(driver, "console-queue")
    row.find_element(By.CSS_SELECTOR, "textarea[name='note']").send_keys("Corrected to 113/min")
    row.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    wait_for(driver, "p.notice")
    assert "The answer was sent" in driver.find_element(By.CSS_SELECTOR, "p.notice").text

    sign_in(driver, live)
    driver.get(f"{live.base}/portal/requests")
    row = driver.find_element(By.XPATH, "//tr[contains(., 'Browser: wrong pulse')]")
    assert "answered" in row.text and "Corrected to 113/min" in row.text
    driver.get(f"{live.base}/portal/notifications")
    assert driver.find_elements(By.CSS_SELECTOR, "main li")
    check_page(driver, "notifications-after-answer")


@pytest.mark.req("TM-06")
@pytest.mark.req("TM-09")
def test_a_visit_is_booked_and_cancelled(driver, live):  # noqa: F811
    sign_in(driver, live)
    driver.get(f"{live.base}/portal/appointments")
    check_page(driver, "appointments-free")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/appointments/book'] button").click()
    wait_for(driver, "p.notice")
    assert "booked" in driver.find_element(By.CSS_SELECTOR, "p.notice").text
    check_page(driver, "appointments-booked")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/cancel'] button").click()
    wait_for(driver, "p.notice")
    assert "cancelled" in driver.find_element(By.CSS_SELECTOR, "p.notice").text


@pytest.mark.req("TM-12")
def test_the_language_switch(driver, live):  # noqa: F811
    sign_in(driver, live)
    driver.find_element(By.CSS_SELECTOR, "nav.langs a[hreflang='kk']").click()
    wait_for(driver, "html[lang='kk']")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Менің жазбаларым"
    assert driver.current_url.endswith("/portal/records")
    check_page(driver, "records-kk")
    driver.find_element(By.CSS_SELECTOR, "nav.langs a[hreflang='ru']").click()
    wait_for(driver, "html[lang='ru']")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Мои записи"
    driver.get(f"{live.base}/portal/access-log")
    check_page(driver, "access-log-ru")
    driver.find_element(By.CSS_SELECTOR, "nav.langs a[hreflang='en']").click()
    wait_for(driver, "html[lang='en']")


def test_a_refused_page_and_logout(driver, live):  # noqa: F811
    sign_in(driver, live, "dr.serik")
    driver.get(f"{live.base}/portal/records")
    assert "Not allowed" in driver.find_element(By.TAG_NAME, "h1").text
    check_page(driver, "forbidden")
    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_for(driver, "p.notice")
    assert "signed out" in driver.find_element(By.CSS_SELECTOR, "p.notice").text
    driver.get(f"{live.base}/portal/console")  # the cookie is gone: the start page, to sign in again
    assert driver.current_url.endswith("/portal/") and driver.find_elements(By.CSS_SELECTOR, "a.button")
    shoot(driver, "signed-out")


def test_the_accessibility_check_finds_a_violation_when_there_is_one(driver):  # noqa: F811
    """The check is not vacuous: an image without a text alternative and an unlabelled field fail it."""
    driver.get("data:text/html;charset=utf-8,<!doctype html><html><head><title>x</title></head><body><main>"
               "<img src='a.png'><input type='text'></main></body></html>")
    with pytest.raises(AssertionError, match=r"image-alt|label"):
        check_page(driver, "axe-self-test")


def lang(driver, live, code: str) -> None:  # noqa: F811
    driver.find_element(By.CSS_SELECTOR, f"nav.langs a[hreflang='{code}']").click()
    wait_for(driver, f"html[lang='{code}']")


@pytest.mark.req("TM-06")
def test_a_slot_another_patient_booked_meanwhile_is_refused_in_the_persons_language(driver, live):  # noqa: F811
    sign_in(driver, live, "bolat")
    driver.get(f"{live.base}/portal/appointments")
    lang(driver, live, "ru")
    button = driver.find_element(By.XPATH, "//form[.//input[@name='slot' and @value='sl2']]//button")
    booking = {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": "Slot/sl2"}],
               "start": "2030-01-12T10:00:00+05:00", "end": "2030-01-12T10:30:00+05:00",
               "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}]}
    taken = httpx.post(f"{live.base}/Appointment", json=booking, headers=as_patient(live, "Patient/p1"), timeout=30)
    assert taken.status_code == 201, taken.text  # Aigerim books sl2 while Bolat looks at the page
    slot = httpx.get(f"{live.base}/Slot/sl2", headers=as_patient(live, "Patient/p1"), timeout=30).json()
    assert slot["status"] == "busy"
    button.click()
    wait_for(driver, "p.notice.error")
    assert "Это время уже занято" in driver.find_element(By.CSS_SELECTOR, "p.notice.error").text
    assert not driver.find_elements(By.XPATH, "//input[@name='slot' and @value='sl2']")  # no longer offered
    check_page(driver, "appointments-taken-ru")
    lang(driver, live, "en")


@pytest.mark.req("TM-12")
def test_a_second_server_process_serves_the_same_signed_in_browser(driver, live):  # noqa: F811
    sign_in(driver, live)  # at the first process
    driver.get(f"{live.second}/portal/records")  # the same host: the browser sends the same cookie
    assert driver.find_element(By.TAG_NAME, "h1").text == "My records"
    assert "Cardiology visit" in driver.find_element(By.TAG_NAME, "main").text
    check_page(driver, "records-second-process")
    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()  # logout at the second
    wait_for(driver, "p.notice")
    driver.get(f"{live.base}/portal/records")  # ended at the first too
    assert driver.current_url.endswith("/portal/")


@pytest.mark.req("AC-08")
@pytest.mark.req("AC-25")
@pytest.mark.req("TM-03")
@pytest.mark.req("TM-07")
def test_a_consent_given_with_the_eds_and_the_offer_accepted(driver, live):  # noqa: F811
    sign_in(driver, live)
    driver.get(f"{live.base}/portal/consents")
    assert "Публичная оферта: телемедицинские услуги" in driver.find_element(By.TAG_NAME, "main").text
    give = driver.find_element(By.CSS_SELECTOR, "form[action$='/consents/give']")
    give.find_element(By.CSS_SELECTOR, "input[name='grantee_kind'][value='practitioner']").click()
    give.find_element(By.ID, "grantee").send_keys("dr1")
    give.find_element(By.CSS_SELECTOR, "input[name='classes'][value='Condition']").click()
    give.find_element(By.CSS_SELECTOR, "input[name='eds']").click()
    give.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    wait_for(driver, "#form-text")
    assert "Practitioner/dr1" in driver.find_element(By.ID, "form-text").text
    check_page(driver, "consent-sign")
    form = base64.b64decode(driver.find_element(By.ID, "form-base64").get_attribute("value") or "")
    signer = load_signer(live.pki / "doctor.key.pem", live.pki / "doctor.cert.pem")  # NCALayer's part
    set_value(driver, "#cms", base64.b64encode(asyncio.run(sign_cms(form, signer))).decode("ascii"))
    driver.find_element(By.CSS_SELECTOR, "form[action$='/consents/sign'] button").click()
    wait_for(driver, "p.notice")
    assert "It carries your EDS signature" in driver.find_element(By.CSS_SELECTOR, "p.notice").text
    assert "signed with EDS" in driver.find_element(By.TAG_NAME, "table").text
    driver.find_element(By.CSS_SELECTOR, "form[action$='/consents/offer'] button").click()
    wait_for(driver, "p.notice")
    assert "You accepted this version" in driver.find_element(By.CSS_SELECTOR, "main").text
    check_page(driver, "consents-signed")


@pytest.mark.req("TM-02")
@pytest.mark.req("TM-16")
def test_remote_services_documents_and_messages(driver, live):  # noqa: F811
    sign_in(driver, live)
    driver.get(f"{live.base}/portal/remote")
    assert "Essential hypertension (I10) (Main diagnosis, Final diagnosis)" in driver.find_element(
        By.TAG_NAME, "main").text
    check_page(driver, "remote-services")
    driver.get(f"{live.base}/portal/documents")
    image = driver.find_element(By.CSS_SELECTOR, "img.thumb")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return arguments[0].naturalWidth", image) == 96)
    link = driver.find_element(By.XPATH, "//a[contains(@href, '/files/DocumentReference/d1/0')]")
    assert link.get_attribute("download") is not None
    check_page(driver, "documents")
    driver.get(f"{live.base}/portal/messages")
    assert "Walk 30 minutes a day" in driver.find_element(By.TAG_NAME, "main").text
    check_page(driver, "messages")


PATIENT_PAGES = ("records", "remote", "documents", "messages", "consents", "access-log", "requests", "appointments",
                 "notifications")
STAFF_PAGES = {"admin1": ("console", "console/deliveries"), "dr.serik": ("console", "console/patient?id=p1")}


@pytest.mark.req("TM-12")
def test_every_page_in_every_language_passes_the_accessibility_check(driver, live):  # noqa: F811
    """axe-core on every page of the cabinet and the console, in Kazakh, Russian and English (switched with the
    page's own language links), a screenshot of each."""
    sign_in(driver, live)
    for code, h1 in (("kk", "Менің жазбаларым"), ("ru", "Мои записи"), ("en", "My records")):
        driver.get(f"{live.base}/portal/records")
        lang(driver, live, code)
        assert driver.find_element(By.TAG_NAME, "h1").text == h1
        for name in PATIENT_PAGES:
            driver.get(f"{live.base}/portal/{name}")
            assert driver.find_element(By.CSS_SELECTOR, "html").get_attribute("lang") == code
            check_page(driver, f"all-{name}-{code}")
    for user, pages in STAFF_PAGES.items():
        sign_in(driver, live, user)
        for code in ("kk", "ru", "en"):
            lang(driver, live, code)
            for name in pages:
                driver.get(f"{live.base}/portal/{name}")
                check_page(driver, f"all-{user}-{name.split('?')[0].replace('/', '-')}-{code}")


# -- the cabinet: NCALayer from the page, signed records, the access log's pages, the chart's time axis ----------
def _ask_to_sign(driver, live, record_type: str) -> str:  # noqa: F811
    """Give dr1 a consent for ``record_type`` with "sign with my EDS": the signing page, and its base64."""
    driver.get(f"{live.base}/portal/consents")
    give = driver.find_element(By.CSS_SELECTOR, "form[action$='/consents/give']")
    give.find_element(By.CSS_SELECTOR, "input[name='grantee_kind'][value='practitioner']").click()
    give.find_element(By.ID, "grantee").send_keys("dr1")
    give.find_element(By.CSS_SELECTOR, f"input[name='classes'][value='{record_type}']").click()
    give.find_element(By.CSS_SELECTOR, "input[name='eds']").click()
    give.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    wait_for(driver, "#form-text")
    return driver.find_element(By.ID, "form-base64").get_attribute("value") or ""


def _consents_for(live, record_type: str) -> list[dict]:  # noqa: F811
    bundle = httpx.get(f"{live.base}/Consent?patient=Patient/p1&status=active", headers=as_patient(live, "Patient/p1"),
                       timeout=30).json()
    return [e["resource"] for e in bundle.get("entry", [])
            if any(c.get("code") == record_type for pr in (e["resource"].get("provision") or {}).get("provision", [])
                   for c in pr.get("class", []))]


@pytest.mark.req("AC-08")
@pytest.mark.req("AC-25")
@pytest.mark.req("TM-12")
def test_a_consent_is_signed_with_ncalayer_from_the_page(driver, live, ncalayer):  # noqa: F811
    """The page's script asks the (fake) NCALayer on this computer, which signs with the test PKI's signing
    certificate; the consent is then written and verified as with a pasted CMS. Cancelled in NCALayer, nothing
    is written and the paste form stays."""
    from signing import verify_cms
    from tests.portal.conftest import PATIENT_IIN

    sign_in(driver, live)
    ncalayer.cancel = True
    _ask_to_sign(driver, live, "Immunization")
    button = driver.find_element(By.ID, "ncalayer-sign")
    assert button.is_displayed()  # shown by the script: JavaScript is on
    button.click()
    WebDriverWait(driver, 20).until(lambda d: "cancelled" in d.find_element(By.ID, "ncalayer-status").text)
    assert driver.current_url.endswith("/portal/consents/sign") and driver.find_element(By.ID, "cms").is_displayed()
    assert _consents_for(live, "Immunization") == []
    check_page(driver, "consent-sign-ncalayer-cancelled")
    ncalayer.drop = True  # NCALayer not running: said, and the paste form stays
    button.click()
    WebDriverWait(driver, 20).until(lambda d: "did not answer" in d.find_element(By.ID, "ncalayer-status").text)
    assert button.is_enabled() and driver.current_url.endswith("/portal/consents/sign")
    ncalayer.drop = False

    ncalayer.cancel = False
    asked = len(ncalayer.requests)
    form_base64 = _ask_to_sign(driver, live, "AllergyIntolerance")
    check_page(driver, "consent-sign-ncalayer")
    driver.find_element(By.ID, "ncalayer-sign").click()
    wait_for(driver, "p.notice")
    assert driver.current_url.endswith("/portal/consents?given=1&signed=1")
    assert "It carries your EDS signature" in driver.find_element(By.CSS_SELECTOR, "p.notice").text
    request = ncalayer.requests[asked]
    assert request["module"] == "kz.gov.pki.knca.commonUtils" and request["method"] == "createCMSSignatureFromBase64"
    assert request["args"] == ["PKCS12", "SIGNATURE", form_base64, True]
    [consent] = _consents_for(live, "AllergyIntolerance")
    source = consent["sourceAttachment"]
    assert source["contentType"] == "application/pkcs7-mime"
    evidence = asyncio.run(verify_cms(base64.b64decode(source["data"]), base64.b64decode(form_base64), None))
    assert evidence.intact and evidence.valid and evidence.iin == PATIENT_IIN
    check_page(driver, "consents-signed-ncalayer")


@pytest.mark.req("TM-10")
@pytest.mark.req("TM-12")
def test_a_remote_services_signed_record_is_shown_with_the_servers_verdict(driver, live):  # noqa: F811
    sign_in(driver, live)
    driver.get(f"{live.base}/portal/remote")
    good = driver.find_element(By.ID, "record-rec-good")
    assert "signature verifies" in good.text and "temperature: 36.6 Cel" in good.text
    assert "does not verify" in driver.find_element(By.ID, "record-rec-bad").text
    assert "no EDS signature" in driver.find_element(By.ID, "record-rec-plain").text
    check_page(driver, "remote-signed-records")


@pytest.mark.req("AC-24")
@pytest.mark.req("TM-18")
def test_the_access_log_pages_and_highlights_break_glass(driver, live):  # noqa: F811
    from fhir_server.security.auth import issue_dev_token

    doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr2", bin="940140000385",
                                                           key_path=live.dev_keys),
              "X-Break-Glass-Reason": "unconscious, brought by ambulance"}
    assert httpx.get(f"{live.base}/Condition/c1", headers=doctor, timeout=30).status_code == 200
    for i in range(55):  # newer lines after it
        httpx.get(f"{live.base}/Observation/o{i % 4 + 1}", headers=as_patient(live, "Patient/p1"), timeout=30)
    sign_in(driver, live)
    driver.get(f"{live.base}/portal/access-log")
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.log tbody tr")) == 50
    driver.find_element(By.CSS_SELECTOR, "nav.pager a[rel='next']").click()
    wait_for(driver, "nav.pager")
    assert "cursor=" in driver.current_url
    rows = driver.find_elements(By.CSS_SELECTOR, "table.log tr.emergency")
    assert rows and "unconscious, brought by ambulance" in rows[0].text
    check_page(driver, "access-log-older")
    driver.get(f"{live.base}/portal/access-log?only=emergency")
    assert "Emergency accesses on this page: 1." in driver.find_element(By.CSS_SELECTOR, "p.emergency-summary").text
    assert driver.find_elements(By.CSS_SELECTOR, "table.log tr.emergency")
    check_page(driver, "access-log-emergency")
    shoot(driver, "access-log-emergency-first-screen", full=False)


@pytest.mark.req("TM-12")
def test_the_chart_of_one_days_readings_has_their_times(driver, live):  # noqa: F811
    sign_in(driver, live, "bolat")
    ticks = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "svg.chart text[text-anchor]")]
    assert ticks[0] == "09:00" and ticks[-1] == "21:30"
    xs = [float(c.get_attribute("cx") or 0) for c in driver.find_elements(By.CSS_SELECTOR, "svg.chart circle")]
    assert len(xs) == 3 and xs[1] - xs[0] < (xs[2] - xs[1]) / 5  # 40 minutes, then almost twelve hours
    check_page(driver, "records-one-day")
    shoot(driver, "records-one-day-first-screen", full=False)
# -- the console's oversight and consilium pages (audit chain, conformance kit, deliveries, consilium opinions) --
def _token(live, role: str, user: str | None, **extra) -> dict[str, str]:  # noqa: F811
    from fhir_server.security.auth import issue_dev_token

    return {"Authorization": f"Bearer {issue_dev_token(role, user, key_path=live.dev_keys, **extra)}"}


def _tamper(live, restore: tuple[int, bytes] | None = None) -> tuple[int, bytes]:  # noqa: F811
    """Change one stored AuditEvent as the database's owner could (its guard off), or put it back."""
    import psycopg

    with psycopg.connect(live.database, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_chain DISABLE TRIGGER USER")
        try:
            if restore is not None:
                conn.execute("UPDATE audit_chain SET data = %s WHERE seq = %s", [restore[1], restore[0]])
                return restore
            row = conn.execute("SELECT seq, data FROM audit_chain WHERE event_id NOT LIKE 'r%%' AND "
                               "event_id NOT LIKE 't%%' ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
            assert row is not None
            seq, data = int(row[0]), bytes(row[1])
            conn.execute("UPDATE audit_chain SET data = %s WHERE seq = %s",
                         [data.replace(b'"recorded":"', b'"recorded":"1', 1), seq])
            return seq, data
        finally:
            conn.execute("ALTER TABLE audit_chain ENABLE TRIGGER USER")


def _verify(driver) -> str:  # noqa: F811
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/console/audit'] button[type='submit']").click()
    # the page before the answer may hold an #audit-status of its own: wait for the new page first
    WebDriverWait(driver, 60).until(staleness_of(page))
    wait_for(driver, "#audit-status")
    return driver.find_element(By.ID, "audit-status").text


@pytest.mark.req("AC-14")
@pytest.mark.req("TM-13")
def test_the_console_verifies_the_audit_chain_and_a_tampered_row_shows_as_broken(driver, live):  # noqa: F811
    sign_in(driver, live, "admin1")
    driver.find_element(By.XPATH, "//nav[contains(@class,'sections')]//a[contains(@href,'/console/audit')]").click()
    wait_for(driver, "form[action$='/console/audit']")
    check_page(driver, "console-audit")
    assert _verify(driver) == "The audit chain is intact."
    check_page(driver, "console-audit-intact")
    seq, original = _tamper(live)
    try:
        lang(driver, live, "ru")
        assert _verify(driver) == f"Нарушена Цепочка аудита нарушена на записи {seq}."
        assert driver.find_element(By.ID, "audit-broken").text == str(seq)
        check_page(driver, "console-audit-broken-ru")
    finally:
        _tamper(live, (seq, original))
    lang(driver, live, "kk")
    assert _verify(driver) == "Аудит тізбегі бүтін."
    lang(driver, live, "en")


@pytest.mark.req("TM-14")
def test_an_admin_runs_the_conformance_kit_from_the_console(driver, live):  # noqa: F811
    sign_in(driver, live, "admin1")
    driver.get(f"{live.base}/portal/console/kit")
    writer = _token(live, "system", None, bin="940140000385")["Authorization"].removeprefix("Bearer ")
    set_value(driver, "#writer", writer)
    driver.find_element(By.CSS_SELECTOR, "input[name='only'][value='capability']").click()
    driver.find_element(By.ID, "operator").send_keys("A. Inspector")
    check_page(driver, "console-kit-form")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/console/kit'] button[type='submit']").click()
    wait_for(driver, "#kit-runs")
    driver.find_element(By.CSS_SELECTOR, "#kit-runs tbody tr a").click()
    WebDriverWait(driver, 120, 0.5).until(lambda d: d.refresh() or d.find_elements(By.CSS_SELECTOR, "#check-CAP-01"))
    assert "A. Inspector" in driver.find_element(By.TAG_NAME, "main").text
    assert writer not in driver.page_source
    runs = httpx.get(f"{live.base}/$conformance-runs", headers=_token(live, "admin", "Practitioner/adm1"),
                     timeout=30).json()
    [run] = [p for p in runs["parameter"] if p["name"] == "run" and
             any(x.get("valueString") == "A. Inspector" for x in p["part"])]
    verdict = next(x["valueString"] for x in run["part"] if x["name"] == "verdict")
    assert verdict in driver.find_element(By.ID, "kit-status").text  # the kit's own verdict
    check_page(driver, "console-kit-run")
    driver.get(f"{live.base}/portal/console/kit")
    check_page(driver, "console-kit")


@pytest.mark.req("TM-11")
@pytest.mark.req("TM-19")
def test_the_console_counts_and_lists_deliveries_in_every_state(driver, live):  # noqa: F811
    from fhir_server.backends import postgres_store

    async def queue() -> None:  # the set-up: outbox rows as the workers leave them (no receiver is configured)
        store = postgres_store(live.database, pool_size=1)
        await store.open()
        try:
            def enqueue(view) -> None:
                for i in range(3):
                    view.enqueue("nehp", "Patient/p1", f"browser-rec-{i}", b"{}")
                view.enqueue("payment", "Patient/p1", "browser-pay-1", b"{}")
            await store.transaction(enqueue)
            [paid] = [i for i in await store.outbox_by_status("payment", "pending", 50) if i.key == "browser-pay-1"]
            await store.transaction(lambda view: view.settle_outbox([paid.id], "delivered", None, None))
        finally:
            await store.close()

    asyncio.run(queue())
    sign_in(driver, live, "admin1")
    driver.get(f"{live.base}/portal/console/deliveries")
    assert int(driver.find_element(By.CSS_SELECTOR, "#count-nehp-pending a").text) >= 3
    check_page(driver, "console-deliveries")
    driver.find_element(By.CSS_SELECTOR, "#count-nehp-pending a").click()
    wait_for(driver, "tr[id^='delivery-']")
    assert "browser-rec-2" in driver.find_element(By.TAG_NAME, "main").text
    check_page(driver, "console-deliveries-pending")
    for code in ("kk", "ru"):
        lang(driver, live, code)
        check_page(driver, f"console-deliveries-pending-{code}")
    lang(driver, live, "en")


@pytest.mark.req("TM-08")
def test_a_participant_answers_a_consilium_and_the_requester_sees_it(driver, live):  # noqa: F811
    from fhir_server.portal.cabinet import consent_resource

    grant = consent_resource("p1", {"reference": "Practitioner/dr1"}, ["ServiceRequest", "Communication"], "",
                             write=True)  # only these: the other tests' view of p1's records is unchanged
    given = httpx.post(f"{live.base}/Consent", json=grant, headers=as_patient(live, "Patient/p1"), timeout=30)
    assert given.status_code == 201, given.text
    request = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
               "category": [{"coding": [{"system": "https://fhir.kzfhir.kz/CodeSystem/kz-remote-service-form",
                                         "code": "consilium"}]}],
               "code": {"text": "Browser consilium: resistant hypertension"},
               "subject": {"reference": "Patient/p1", "display": "Ахметова А."},
               "requester": {"reference": "Practitioner/dr1", "display": "Dr Ivanov"},
               "performer": [{"reference": "Practitioner/dr1", "display": "Dr Ivanov"},
                             {"reference": "Practitioner/dr3", "display": "Dr Nurlanova"}],
               "authoredOn": "2026-11-25T09:00:00+05:00", "occurrenceDateTime": "2026-11-27T15:00:00+05:00"}
    created = httpx.post(f"{live.base}/ServiceRequest", json=request, timeout=30,
                         headers=_token(live, "practitioner", "Practitioner/dr1"))
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    try:
        sign_in(driver, live, "dr.serik")
        row = wait_for(driver, f"#opinions-{sid}")
        check_page(driver, "console-consilium")
        row.find_element(By.CSS_SELECTOR, "textarea").send_keys("Add a thiazide diuretic; potassium in a week.")
        row.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
        wait_for(driver, "p.notice")
        text = driver.find_element(By.ID, f"opinions-{sid}").text
        assert "Dr Ivanov:" in text and "Add a thiazide diuretic; potassium in a week." in text
        check_page(driver, "console-consilium-answered")
        for code in ("kk", "ru"):
            lang(driver, live, code)
            check_page(driver, f"console-consilium-{code}")
        lang(driver, live, "en")
    finally:
        consent = given.json()
        httpx.put(f"{live.base}/Consent/{consent['id']}", json={**consent, "status": "inactive"},
                  headers=as_patient(live, "Patient/p1"), timeout=30)


CONSOLE_PAGES = {"admin1": ("console/audit", "console/kit", "console/deliveries")}


@pytest.mark.req("TM-12")
def test_the_new_console_pages_pass_the_accessibility_check_in_every_language(driver, live):  # noqa: F811
    for user, pages in CONSOLE_PAGES.items():
        sign_in(driver, live, user)
        for code in ("kk", "ru", "en"):
            lang(driver, live, code)
            for name in pages:
                driver.get(f"{live.base}/portal/{name}")
                assert driver.find_element(By.CSS_SELECTOR, "html").get_attribute("lang") == code
                check_page(driver, f"all-{user}-{name.replace('/', '-')}-{code}")
