"""A customer's business profile: what every directory listing is filled from."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

__all__ = ["Address", "BusinessProfile"]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postcode: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=60)

    def one_line(self) -> str:
        return f"{self.street}, {self.postcode} {self.city}, {self.country}"


class BusinessProfile(BaseModel):
    """Required: name, address, phone, website, category, hours. Optional: logo, tagline.

    Nothing is dispatched until every required field is present: validation
    names each missing field.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    address: Address
    phone: str = Field(min_length=5, max_length=40, pattern=r"^[+0-9 ()\-]+$")
    website: HttpUrl
    category: str = Field(min_length=1, max_length=100)
    hours: str = Field(min_length=1, max_length=200)
    logo_url: HttpUrl | None = None
    tagline: str | None = Field(None, max_length=200)

    def value(self, key: str) -> str | None:
        """The profile value a directory map's `profile` key names (e.g. "address.city")."""
        if key == "address":
            return self.address.one_line()
        if key.startswith("address."):
            return str(getattr(self.address, key.split(".", 1)[1]))
        raw: Any = getattr(self, key, None)
        return None if raw is None else str(raw)
