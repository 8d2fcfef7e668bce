"""The browsable API page (issue 13 item 5): Swagger UI served from the package's own assets, with their
licence, loading [base]/openapi.json; nothing is fetched from anywhere else."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import httpx

from fhir_server.api.docs_page import ASSETS, FILES

README = (ASSETS / "README.md").read_text(encoding="utf-8")


async def test_the_page_and_every_asset_it_names_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs/")  # no token: the page is public, the API behind it is not
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    names = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assets = [n for n in names if not n.startswith("../")]
    assert set(assets) == {"swagger-ui.css", "kzfhir-docs.css", "favicon-32x32.png", "swagger-ui-bundle.js",
                           "kzfhir-docs.js"}
    assert {n for n in names if n.startswith("../")} == {"../openapi.json", "../metadata"}
    for name in assets:
        r = await client.get(f"/docs/{name}")
        assert r.status_code == 200, name
        assert r.headers["x-content-type-options"] == "nosniff"
    script = (await client.get("/docs/kzfhir-docs.js")).text
    assert '"../openapi.json"' in script and "validatorUrl: null" in script


async def test_nothing_outside_the_server_is_named(client: httpx.AsyncClient) -> None:
    for name in ("", "kzfhir-docs.js", "kzfhir-docs.css"):
        text = (await client.get(f"/docs/{name}")).text
        assert re.findall(r"https?://", text) == [], name


async def test_vendored_files_are_the_published_ones_with_their_licence(client: httpx.AsyncClient) -> None:
    for served, sha in (("swagger-ui-bundle.js", "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2"),
                        ("swagger-ui.css", "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d")):
        assert sha in README
        plain = await client.get(f"/docs/{served}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert hashlib.sha256(plain.content).hexdigest() == sha
        packed = await client.get(f"/docs/{served}", headers={"Accept-Encoding": "gzip, br"})
        assert packed.headers["content-encoding"] == "gzip"  # sent as stored; httpx decodes it
        assert hashlib.sha256(packed.content).hexdigest() == sha
        assert gzip.decompress((ASSETS / FILES[served][0]).read_bytes()) == plain.content
    licence = await client.get("/docs/LICENSE-swagger-ui")
    assert "Apache License" in licence.text
    assert "SmartBear" in (await client.get("/docs/NOTICE-swagger-ui")).text
    assert "swagger-ui-dist@5.35.0" in README


async def test_a_browser_at_the_base_url_is_sent_to_the_page(client: httpx.AsyncClient, auth) -> None:
    browser = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 303 and browser.headers["location"] == "docs/"
    assert (await client.get("/docs")).headers["location"] == "docs/"
    fhir = await client.get("/", headers={"Accept": "application/fhir+json", **auth("system", bin="940140000385")})
    assert fhir.status_code != 303
    assert (await client.get("/docs/../../etc/passwd")).status_code != 200
    assert (await client.get("/docs/README.md")).status_code != 200  # only the listed files


def test_every_listed_file_exists() -> None:
    assert all((ASSETS / name).is_file() for name, _ in FILES.values())
    assert Path(ASSETS / "README.md").is_file()
