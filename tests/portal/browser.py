"""The browser tests' machinery: a real ``kzfhir serve`` with the portal on (two processes on one PostgreSQL
store and one identity registry, per module), a headless
Chromium driven by Selenium (Debian's chromium + chromium-driver, ``make chromium``; one per module), signing
in on the authorization server's page like a person, axe-core (vendored, tests/portal/vendor) run on every
page, and a screenshot of every page kept as a test artefact in ``tests/portal/screenshots/`` (git-ignored)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registry import Registry
from signing import load_signer, sign_cms
from tests.live_server import free_port, wait_until_up
from tests.pg import fresh_database, release_database
from tests.portal.conftest import PASSWORD, portal_settings, register_people, seed_resources, store
from tests.portal.ncalayer import FakeNcaLayer
from tests.portal.test_care_pages import care_resources
from tests.portal.test_consent_signing import offer
from tests.portal.test_signed_records import records_of

HERE = Path(__file__).parent
SHOTS = HERE / "screenshots"
AXE = gzip.decompress((HERE / "vendor" / "axe-core" / "axe.min.js.gz").read_bytes()).decode("utf-8")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@dataclass
class Live:
    base: str
    pki: Path
    dev_keys: Path
    #: a second ``kzfhir serve`` on the same files and public URL (as behind a balancer), another port
    second: str = ""
    #: the PostgreSQL database both serve (a test's set-up that the API has no way to make: outbox rows, tampering)
    database: str = ""


def live_settings(tmp: Path, pki: Path, base: str, database: str) -> Settings:
    """The live servers' settings: the FHIR store on PostgreSQL (the SQLite store serves one process, and two
    processes serve this browser), the identity registry (with the portal's sessions) a file both share."""
    return portal_settings(tmp, pki, base).model_copy(update={"database": database,
                                                              "auth_database": tmp / "identity.sqlite"})


def one_day_readings() -> list[dict[str, Any]]:
    """Bolat's pulse three times on one day (with o9 of the seed): the chart's x axis is their time."""
    return [{"resourceType": "Observation", "id": f"o9{n}", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
             "subject": {"reference": "Patient/p2"}, "effectiveDateTime": f"2026-11-01T{at}:00+05:00",
             "valueQuantity": {"value": value, "unit": "/min"}} for n, at, value in ((1, "09:40", 70),
                                                                                   (2, "21:30", 66))]


async def _seed(settings: Settings, pki: Path) -> None:
    # stored by a server without a trust store, as tests/portal/test_signed_records.py does; the live servers
    # verify the records' signatures against theirs
    app = create_app(settings.model_copy(update={"security_enabled": False}))
    async with app.router.lifespan_context(app):
        await store(app, [*seed_resources(), *care_resources(), offer(), *one_day_readings(),
                          *await records_of(pki)])


@pytest.fixture(scope="module")
def ncalayer(pki: Path) -> Iterator[FakeNcaLayer]:
    """The fake NCALayer (tests/portal/ncalayer.py) the live servers' signing page talks to."""
    fake = FakeNcaLayer(pki)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pki: Path, ncalayer: FakeNcaLayer) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("portal-live")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    database = fresh_database("portal", published=True)
    settings = live_settings(tmp, pki, base, database)
    asyncio.run(_seed(settings, pki))
    register_people(Registry(IdentityConfig.from_settings(settings).database))
    env = {**os.environ, "KZFHIR_AUTH_SERVER": "true", "KZFHIR_BASE_URL": base, "KZFHIR_AUTH_EDS_SIGNIN": "true",
           "KZFHIR_AUTH_EDS_TRUST_DIR": str(pki / "trust"), "KZFHIR_PORTAL": "true",
           "KZFHIR_DEV_KEY_PATH": str(tmp / "dev-jwks.json"), "KZFHIR_SYNCHRONOUS_FULL": "false",
           "KZFHIR_AUTH_DATABASE": str(settings.auth_database), "KZFHIR_PORTAL_NCALAYER_URL": ncalayer.url,
           "KZFHIR_TRUST_DIR": str(pki / "trust")}
    command = [sys.executable, "-m", "fhir_server.cli", "serve", "--database", str(settings.database),
               "--log-level", "warning", "--port"]
    second_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for p in (port, second_port):  # one after the other: the first creates the files
            # stderr to a file: a pipe nobody reads would block a server that logs more than 64 KiB
            log = tmp / f"server-{p}.log"
            with log.open("wb") as sink:
                procs.append(subprocess.Popen([*command, str(p)], stdout=subprocess.DEVNULL, stderr=sink, env=env))
            try:
                wait_until_up(p, "/portal/", seconds=90)
            except RuntimeError:
                procs[-1].terminate()
                procs[-1].wait(timeout=20)
                raise RuntimeError(log.read_text(errors="replace")[-3000:]) from None
        yield Live(base, pki, tmp / "dev-jwks.json", f"http://127.0.0.1:{second_port}", str(database))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        release_database(database)


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    assert Path(CHROMEDRIVER).exists(), "run `make chromium` (Debian's chromium and chromium-driver)"
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--lang=en-US", "--no-first-run"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    chrome.implicitly_wait(0)
    try:
        yield chrome
    finally:
        chrome.quit()


def wait_for(driver: webdriver.Chrome, css: str, seconds: float = 20) -> Any:
    return WebDriverWait(driver, seconds).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def sign_in(driver: webdriver.Chrome, live: Live, username: str | None = None) -> None:
    """As a person: the portal's start page, its sign-in link, the authorization server's page (the EDS form
    with a CMS signed by the test PKI's authentication certificate, or the password form), its consent screen
    the first time; back on the portal."""
    driver.delete_all_cookies()
    driver.get(f"{live.base}/portal/")
    driver.find_element(By.CSS_SELECTOR, "a.button[href$='/portal/signin']").click()
    wait_for(driver, "input[name='signin_method']")
    if username is None:
        form = driver.find_element(By.XPATH, "//form[.//input[@name='signin_method' and @value='eds']]")
        challenge = form.find_element(By.NAME, "eds_challenge").get_attribute("value") or ""
        signer = load_signer(live.pki / "doctor-auth.key.pem", live.pki / "doctor-auth.cert.pem")
        cms = asyncio.run(sign_cms(challenge.encode("utf-8"), signer))
        field = form.find_element(By.NAME, "eds_cms")
        driver.execute_script("arguments[0].value = arguments[1];", field, base64.b64encode(cms).decode("ascii"))
    else:
        form = driver.find_element(By.XPATH, "//form[.//input[@name='signin_method' and @value='password']]")
        form.find_element(By.NAME, "username").send_keys(username)
        form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    WebDriverWait(driver, 20).until(lambda d: "/portal/" in d.current_url or
                                    d.find_elements(By.CSS_SELECTOR, "button[value='approve']"))
    allow = driver.find_elements(By.CSS_SELECTOR, "button[value='approve']")
    if allow:
        allow[0].click()
    WebDriverWait(driver, 20).until(lambda d: "/portal/records" in d.current_url or "/portal/console" in d.current_url)


def check_page(driver: webdriver.Chrome, name: str) -> None:
    """axe-core on the page as shown (WCAG 2.x A/AA rules): no serious or critical violation; then its
    screenshot, as a test artefact."""
    driver.execute_script(AXE + "\n;return true;")
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', "
        "'best-practice']}}).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, "
        "nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))).catch(e => done([{id: 'axe-error', "
        "impact: 'critical', nodes: [String(e)]}]));")
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{name}: {bad}"
    shoot(driver, name)


def shoot(driver: webdriver.Chrome, name: str, *, full: bool = True) -> Path:
    """The page as a PNG: all of it (up to 4000 px), or with ``full=False`` the first screen (for docs)."""
    SHOTS.mkdir(exist_ok=True)
    width = driver.get_window_size()["width"]
    if full:
        height = driver.execute_script("return Math.min(document.body.scrollHeight, 4000);")
        driver.set_window_size(width, max(int(height) + 140, 600))
    else:
        driver.set_window_size(width, 900)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def api_get(live: Live, path: str) -> httpx.Response:
    return httpx.get(f"{live.base}{path}", timeout=30)


def as_patient(live: Live, patient: str) -> dict[str, str]:
    """A development token of the live server for a patient (the test's own API calls, not a page's)."""
    from fhir_server.security.auth import issue_dev_token

    return {"Authorization": f"Bearer {issue_dev_token('patient', patient, key_path=live.dev_keys)}"}


def set_value(driver: webdriver.Chrome, css: str, value: str) -> None:
    """Paste a long value (a CMS) into a field, as a person pasting would."""
    driver.execute_script("arguments[0].value = arguments[1];", driver.find_element(By.CSS_SELECTOR, css), value)
