"""Generate `directories.json`, the sandbox's master list of directory sites.

Run once, commit the output; the fixed seed makes it reproducible::

    python -m portwright.sandbox.directories._generate

Each directory gets its own field names, one or two form steps, maybe a
captcha, maybe a 5xx rate or a permanent outage. The file is written one
directory per line so a diff shows exactly which directories changed.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from portwright.sandbox.directories._catalog import DATA_FILE, PROFILE_KEYS, Catalog
from portwright.sandbox.directories._pages import FORM_ATTRS

__all__ = ["SEED", "generate", "main", "render"]

SEED = 20_240_611
COUNT = 540

_CATEGORIES: dict[str, str] = {
    "general": "Business",
    "local": "Local",
    "restaurants": "Eats",
    "trades": "Trades",
    "health": "Health",
    "legal": "Legal",
    "retail": "Shops",
    "tech": "Tech",
    "automotive": "Auto",
    "travel": "Travel",
    "beauty": "Beauty",
    "real-estate": "Property",
    "education": "Schools",
    "pets": "Pets",
    "events": "Events",
}
_PREFIXES = (
    "City", "Metro", "Open", "Bright", "True", "Prime", "Blue", "Green", "North", "South",
    "East", "West", "Summit", "Harbor", "River", "Maple", "Oak", "Cedar", "Pine", "Union",
    "Main Street", "Corner", "Urban", "Village", "County", "Civic", "Nova", "Atlas", "Beacon",
    "Lantern", "Compass", "Keystone", "Meadow", "Granite", "Silver", "Golden", "Copper",
)  # fmt: skip
_SUFFIXES = (
    "Directory", "Listings", "Finder", "Pages", "Guide", "Index", "Hub", "Registry", "List",
    "Book", "Locator", "Network",
)  # fmt: skip

# profile key -> the input names directories use for it
_NAMES: dict[str, tuple[str, ...]] = {
    "name": ("business_name", "company", "title", "company_name", "listing_name", "biz_name"),
    "phone": ("phone", "telephone", "tel", "phone_number", "contact_phone"),
    "website": ("website", "url", "homepage", "web", "site_url"),
    "address": ("address", "full_address", "location", "street_address"),
    "address.street": ("street", "address1", "addr_line1", "street_line"),
    "address.city": ("city", "town", "locality"),
    "address.postcode": ("postcode", "zip", "postal_code", "zipcode"),
    "address.country": ("country", "country_name"),
    "category": ("category", "business_type", "industry", "sector", "listing_category"),
    "hours": ("hours", "opening_hours", "business_hours", "open_times"),
    "logo_url": ("logo", "logo_url", "image_url", "picture"),
    "tagline": ("tagline", "slogan", "summary", "short_description"),
}
_STEP_ONE = ("name", "phone", "website", "category")


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _fields(rng: random.Random) -> list[dict[str, Any]]:
    keys = ["name", "phone"]
    if rng.random() < 0.6:
        keys.append("address")
    else:
        keys += ["address.street", "address.city", "address.postcode"]
        if rng.random() < 0.5:
            keys.append("address.country")
    for key, share in (("website", 0.95), ("category", 0.9), ("hours", 0.7)):
        if rng.random() < share:
            keys.append(key)
    for key, share in (("logo_url", 0.4), ("tagline", 0.5)):
        if rng.random() < share:
            keys.append(key)
    required = {
        "website": rng.random() < 0.8,
        "hours": rng.random() < 0.4,
        "logo_url": False,
        "tagline": False,
    }
    return [
        {"profile": k, "input": rng.choice(_NAMES[k]), "required": required.get(k, True)}
        for k in keys
    ]


def _record(rng: random.Random, slug: str, name: str, category: str) -> dict[str, Any]:
    fields = _fields(rng)
    multi = rng.random() < 0.35
    captcha = rng.random() < 0.2
    groups = (
        [
            [f for f in fields if f["profile"] in _STEP_ONE],
            [f for f in fields if f["profile"] not in _STEP_ONE],
        ]
        if multi
        else [fields]
    )
    forms = sorted(FORM_ATTRS)
    steps: list[dict[str, Any]] = []
    for n, group in enumerate(groups, start=1):
        rng.shuffle(group)
        last = n == len(groups)
        steps.append(
            {
                "form": rng.choice(forms),
                "action": f"/d/{slug}/submit" if last else f"/d/{slug}/step-{n}",
                "fields": group,
                "captcha": captcha and last,
            }
        )
    roll = rng.random()
    outage = "down" if roll < 0.03 else "gone" if roll < 0.05 else None
    error_rate = round(rng.uniform(0.1, 0.5), 2) if outage is None and roll > 0.85 else 0.0
    return {
        "slug": slug,
        "name": name,
        "category": category,
        "url_path": f"/d/{slug}/",
        "steps": steps,
        "captcha": captcha,
        "success_selector": "#listing[data-listing-id]",
        "duplicate_selector": ".error.duplicate",
        "error_selector": ".error",
        "sandbox": {"error_rate": error_rate, "outage": outage},
    }


def generate(seed: int = SEED, count: int = COUNT) -> dict[str, Any]:
    """The whole catalogue as plain JSON data, reproducible from `seed`."""
    rng = random.Random(seed)
    seen: set[str] = set()
    directories: list[dict[str, Any]] = []
    while len(directories) < count:
        category = rng.choice(sorted(_CATEGORIES))
        name = f"{rng.choice(_PREFIXES)} {_CATEGORIES[category]} {rng.choice(_SUFFIXES)}"
        slug = _slugify(name)
        if slug in seen:
            continue
        seen.add(slug)
        directories.append(_record(rng, slug, name, category))
    return {
        "version": 1,
        "seed": seed,
        "generated_by": "python -m portwright.sandbox.directories._generate",
        "profile_keys": PROFILE_KEYS,
        "directories": directories,
    }


def render(data: dict[str, Any]) -> str:
    """Serialise with one directory per line; validated against the schema first."""
    Catalog.model_validate(data)
    head = {k: v for k, v in data.items() if k != "directories"}
    lines = ["    " + json.dumps(d, separators=(",", ":")) for d in data["directories"]]
    body = json.dumps(head, indent=2)[:-2]
    return body + ',\n  "directories": [\n' + ",\n".join(lines) + "\n  ]\n}\n"


def main(path: Path = DATA_FILE) -> None:
    """Write the data file."""
    path.write_text(render(generate()), encoding="utf-8")


if __name__ == "__main__":
    main()
