"""The directories service: hundreds of forms described by one data file, with real failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import httpx
import pytest
from parsel import Selector

from portwright.sandbox import SandboxWorld
from portwright.sandbox.captcha import answer_for, captcha_id_of, world_secret
from portwright.sandbox.directories import (
    DATA_FILE,
    Catalog,
    DirectoryRecord,
    business_key,
    specs,
)
from portwright.sandbox.directories._generate import generate, render

SEED = 5
PROFILE = {
    "name": "Harbour Light Bakery",
    "address": "12 Quay St, 90210 Sandbox City, Utopia",
    "address.street": "12 Quay St",
    "address.city": "Sandbox City",
    "address.postcode": "90210",
    "address.country": "Utopia",
    "phone": "+1 (555) 010-2030",
    "website": "https://harbourlight.example",
    "category": "Bakery",
    "hours": "Mon-Sat 7:00-18:00",
    "logo_url": "https://harbourlight.example/logo.png",
    "tagline": "Fresh every morning",
}
Solver = Callable[[str], str]


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxWorld]:
    with SandboxWorld(specs(), seed=SEED) as running:
        yield running


@pytest.fixture(scope="module")
def catalog(world: SandboxWorld) -> Catalog:
    raw = httpx.get(world.url("directories") + "/directories.json").content
    return Catalog.model_validate_json(raw)


def _solve(sitekey: str) -> str:
    captcha_id = captcha_id_of(sitekey)
    assert captcha_id is not None
    return answer_for(world_secret(SEED), captcha_id)


def submit(
    client: httpx.Client,
    base: str,
    record: DirectoryRecord,
    profile: dict[str, str],
    solve: Solver = _solve,
) -> httpx.Response:
    """What a generic form adapter does: follow the record's steps, fill mapped inputs."""
    page = client.get(base + record.url_path)
    for step in record.steps:
        if page.status_code != 200:
            return page
        form = Selector(page.text).css(step.form)
        data = {
            str(i.attrib["name"]): str(i.attrib.get("value", ""))
            for i in form.css("input[type=hidden]")
        }
        data |= {f.input: profile.get(f.profile, "") for f in step.fields}
        if step.captcha:
            data["captcha_answer"] = solve(str(form.css("div.captcha::attr(data-sitekey)").get()))
        page = client.post(urljoin(str(page.url), str(form.attrib["action"])), data=data)
    return page


def _listing_id(page: httpx.Response, record: DirectoryRecord) -> str | None:
    return Selector(page.text).css(record.success_selector).attrib.get("data-listing-id")


def _pick(catalog: Catalog, *, steps: int, captcha: bool) -> DirectoryRecord:
    return next(
        d
        for d in catalog.directories
        if len(d.steps) == steps
        and d.captcha is captcha
        and d.sandbox.outage is None
        and d.sandbox.error_rate == 0
    )


def test_single_and_multi_step_directories_accept_a_profile_through_the_mapping(
    world: SandboxWorld, catalog: Catalog
) -> None:
    """A one-page and a two-page directory accept a listing filled only from the data file."""
    base = world.url("directories")
    with httpx.Client() as client:
        for steps in (1, 2):
            record = _pick(catalog, steps=steps, captcha=False)
            page = submit(client, base, record, PROFILE)
            assert page.status_code == 200, page.text
            assert _listing_id(page, record)
            key = f"{record.slug}:{business_key(PROFILE['name'], PROFILE['phone'])}"
            assert world.ledger("directories").count("listing", key) == 1


def test_captcha_directory_needs_the_right_answer(world: SandboxWorld, catalog: Catalog) -> None:
    """A captcha directory refuses a wrong answer with .error.captcha and accepts a solved one."""
    base = world.url("directories")
    record = _pick(catalog, steps=2, captcha=True)
    profile = PROFILE | {"name": "Captcha Corner Cafe"}
    with httpx.Client() as client:
        wrong = submit(client, base, record, profile, solve=lambda _: "WRONG")
        assert wrong.status_code == 400
        assert Selector(wrong.text).css(".error.captcha")
        key = f"{record.slug}:{business_key(profile['name'], profile['phone'])}"
        assert world.ledger("directories").count("listing", key) == 0
        page = submit(client, base, record, profile)
        assert page.status_code == 200
        assert _listing_id(page, record)
        assert world.ledger("directories").count("listing", key) == 1


def test_duplicate_listing_is_refused_and_recorded_once(
    world: SandboxWorld, catalog: Catalog
) -> None:
    """The same business (name and phone written differently) is refused as already listed."""
    base = world.url("directories")
    record = _pick(catalog, steps=1, captcha=True)
    profile = PROFILE | {"name": "Dupe & Sons, Ltd.", "phone": "+44 20 7946 0018"}
    again = profile | {"name": "DUPE & SONS LTD", "phone": "(44) 207-946-0018"}
    with httpx.Client() as client:
        first = submit(client, base, record, profile)
        assert first.status_code == 200
        second = submit(client, base, record, again)
    assert second.status_code == 409
    assert Selector(second.text).css(record.duplicate_selector)
    key = f"{record.slug}:{business_key(profile['name'], profile['phone'])}"
    assert world.ledger("directories").count("listing", key) == 1


def test_down_and_gone_directories_always_fail(world: SandboxWorld, catalog: Catalog) -> None:
    """A down directory answers 503 and a gone one 502 'site gone', every time."""
    base = world.url("directories")
    down = next(d for d in catalog.directories if d.sandbox.outage == "down")
    gone = next(d for d in catalog.directories if d.sandbox.outage == "gone")
    with httpx.Client() as client:
        for _ in range(5):
            assert submit(client, base, down, PROFILE).status_code == 503
            failed = submit(client, base, gone, PROFILE)
            assert failed.status_code == 502
            assert "site gone" in failed.text


def test_flaky_directory_fails_sometimes_and_succeeds_on_retry(
    world: SandboxWorld, catalog: Catalog
) -> None:
    """A flaky directory answers some requests 5xx; retrying the submission gets it listed."""
    base = world.url("directories")
    record = max(
        (d for d in catalog.directories if len(d.steps) == 1 and not d.captcha),
        key=lambda d: d.sandbox.error_rate,
    )
    assert record.sandbox.error_rate >= 0.3
    profile = PROFILE | {"name": "Retry Roasters"}
    statuses: list[int] = []
    with httpx.Client() as client:
        for _ in range(20):
            page = submit(client, base, record, profile)
            statuses.append(page.status_code)
            if page.status_code == 200:
                break
    assert statuses[-1] == 200
    assert any(s >= 500 for s in statuses)
    key = f"{record.slug}:{business_key(profile['name'], profile['phone'])}"
    assert world.ledger("directories").count("listing", key) == 1


def _check_form(html: str, record: DirectoryRecord, step: int) -> None:
    spec = record.steps[step]
    forms = Selector(html).css(spec.form)
    assert len(forms) == 1, (record.slug, step)
    form = forms[0]
    assert form.attrib["action"] == spec.action
    controls = {
        str(c.attrib["name"]): "required" in c.attrib
        for c in form.css("input:not([type=hidden]), textarea, select")
    }
    expected = {f.input: f.required for f in spec.fields}
    if spec.captcha:
        expected["captcha_answer"] = True
        assert form.css("div.captcha[data-sitekey] input[type=hidden][name=captcha_id]")
    assert controls == expected, record.slug


def _check_directory(client: httpx.Client, record: DirectoryRecord) -> None:
    page = client.get(record.url_path)
    if record.sandbox.outage is not None:
        assert page.status_code in (502, 503)
        return
    assert page.status_code == 200
    _check_form(page.text, record, 0)
    if len(record.steps) == 2:
        form = Selector(page.text).css(record.steps[0].form)
        data = {
            str(i.attrib["name"]): str(i.attrib["value"]) for i in form.css("input[type=hidden]")
        }
        data |= {f.input: PROFILE[f.profile] for f in record.steps[0].fields}
        second = client.post(record.steps[0].action, data=data)
        assert second.status_code == 200
        _check_form(second.text, record, 1)


def test_data_file_describes_every_served_form(world: SandboxWorld, catalog: Catalog) -> None:
    """Over 500 directories, and each one's served form has exactly the inputs the file maps."""
    assert len(catalog.directories) >= 500
    assert len({d.slug for d in catalog.directories}) == len(catalog.directories)
    assert DATA_FILE.read_text(encoding="utf-8") == render(generate())
    world.context("directories").options["error_scale"] = 0.0
    try:
        with (
            httpx.Client(base_url=world.url("directories")) as client,
            ThreadPoolExecutor(16) as pool,
        ):
            list(pool.map(lambda r: _check_directory(client, r), catalog.directories))
    finally:
        world.context("directories").options["error_scale"] = 1.0
