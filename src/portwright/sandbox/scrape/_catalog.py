"""A generated product catalogue, deterministic under the world seed.

Products are made lazily from the service's seeded draws (`ChaosState.draw`),
one key per product and field, and cached, so every request for product 17
sees the same product whatever order pages are fetched in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Catalog", "Product"]

Draw = Callable[[str], float]

_ADJECTIVES = (
    "Sturdy",
    "Compact",
    "Deluxe",
    "Classic",
    "Modern",
    "Rugged",
    "Elegant",
    "Portable",
    "Quiet",
    "Smart",
    "Vintage",
    "Lightweight",
    "Heavy-duty",
    "Minimal",
    "Premium",
    "Eco",
)
_NOUNS = (
    "Kettle",
    "Lamp",
    "Backpack",
    "Chair",
    "Desk",
    "Blender",
    "Headphones",
    "Umbrella",
    "Notebook",
    "Toaster",
    "Bicycle Bell",
    "Water Bottle",
    "Garden Hose",
    "Clock",
    "Rug",
    "Mug",
)
_COLOURS = ("Red", "Blue", "Green", "Black", "White", "Grey", "Yellow", "Teal", "Orange", "Navy")
_MATERIALS = ("Steel", "Oak", "Bamboo", "Aluminium", "Cotton", "Glass", "Ceramic", "Recycled PET")
_TAGS = (
    "new",
    "sale",
    "bestseller",
    "eco",
    "limited",
    "gift",
    "outdoor",
    "kitchen",
    "office",
    "home",
    "travel",
    "kids",
)


@dataclass(frozen=True, slots=True)
class Product:
    """One catalogue product, the same on every page that shows it."""

    id: int
    title: str
    price_pence: int
    currency: str
    tags: tuple[str, ...]
    specs: tuple[tuple[str, str], ...]
    description: str
    in_stock: bool
    rating: float

    @property
    def price_text(self) -> str:
        """The price as shown on the page, e.g. `£12.34`."""
        return f"£{self.price_pence / 100:.2f}"

    @property
    def amount(self) -> str:
        """The price as a plain decimal string, e.g. `12.34`."""
        return f"{self.price_pence / 100:.2f}"

    def as_json(self) -> dict[str, Any]:
        """The JSON shape served by the JS site's API."""
        return {
            "id": self.id,
            "title": self.title,
            "price": self.amount,
            "price_text": self.price_text,
            "currency": self.currency,
            "tags": list(self.tags),
            "specs": dict(self.specs),
            "description": self.description,
            "in_stock": self.in_stock,
            "rating": self.rating,
        }


def _pick(options: tuple[str, ...], value: float) -> str:
    return options[int(value * len(options)) % len(options)]


class Catalog:
    """`size` products with ids 1..size, generated on first use from seeded draws."""

    def __init__(self, draw: Draw, size: int) -> None:
        if size < 1:
            raise ValueError(f"catalogue size must be at least 1, got {size}")
        self._draw = draw
        self.size = size
        self._lock = threading.Lock()
        self._cache: dict[int, Product] = {}

    def __len__(self) -> int:
        return self.size

    def get(self, product_id: int) -> Product | None:
        """The product with this id, or None outside 1..size."""
        if not 1 <= product_id <= self.size:
            return None
        with self._lock:
            found = self._cache.get(product_id)
            if found is None:
                found = self._cache[product_id] = self._make(product_id)
            return found

    def page_count(self, page_size: int) -> int:
        """How many listing pages of `page_size` the catalogue fills."""
        return -(-self.size // page_size)

    def page(self, number: int, page_size: int) -> list[Product]:
        """Listing page `number` (1-based); empty outside the catalogue."""
        first = (number - 1) * page_size + 1
        last = min(first + page_size - 1, self.size)
        return [p for i in range(first, last + 1) if (p := self.get(i)) is not None]

    def _make(self, pid: int) -> Product:
        def d(name: str) -> float:
            return self._draw(f"catalog|{pid}|{name}")

        model = f"{chr(65 + int(d('model-letter') * 26))}{100 + int(d('model-num') * 900)}"
        colour = _pick(_COLOURS, d("colour"))
        noun = _pick(_NOUNS, d("noun"))
        title = f"{_pick(_ADJECTIVES, d('adjective'))} {colour} {noun} {model}"
        tag_count = 2 + int(d("tag-count") * 3)
        start = int(d("tag-start") * len(_TAGS))
        tags = tuple(_TAGS[(start + 5 * i) % len(_TAGS)] for i in range(tag_count))
        material = _pick(_MATERIALS, d("material"))
        weight = f"{0.1 + d('weight') * 9.9:.1f} kg"
        specs = (
            ("SKU", f"SKU-{pid:05d}"),
            ("Colour", colour),
            ("Material", material),
            ("Weight", weight),
        )
        description = (
            f"A {colour.lower()} {noun.lower()} made of {material.lower()}, "
            f"model {model}. Ships in {1 + int(d('ships') * 5)} working days."
        )
        return Product(
            id=pid,
            title=title,
            price_pence=199 + int(d("price") * 49_800),
            currency="GBP",
            tags=tags,
            specs=specs,
            description=description,
            in_stock=d("stock") >= 0.15,
            rating=round(1.0 + d("rating") * 4.0, 1),
        )
