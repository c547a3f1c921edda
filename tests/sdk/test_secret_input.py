"""Secret input fields: found at any depth of an input model, masked or mapped in its JSON."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, SecretStr

from portwright.sdk import SECRET_MASK, dump_with_secrets, map_secret_fields, mask_secret_fields


class Account(BaseModel):
    user: str
    password: SecretStr


class Deep(BaseModel):
    account: Account
    maybe: Account | None = None
    tokens: list[SecretStr] = []
    by_site: dict[str, SecretStr] = {}
    pair: tuple[str, SecretStr] = ("a", SecretStr("b"))
    pin: Annotated[SecretStr, Field(min_length=4)] = SecretStr("0000")
    note: str = "plain"


def _deep() -> Deep:
    return Deep(
        account=Account(user="ada", password=SecretStr("pw-1")),
        maybe=Account(user="bob", password=SecretStr("pw-2")),
        tokens=[SecretStr("t-1"), SecretStr("t-2")],
        by_site={"x": SecretStr("s-1")},
        pair=("label", SecretStr("p-1")),
        pin=SecretStr("1234"),
    )


def test_dump_with_secrets_replaces_each_secret_by_what_seal_returns() -> None:
    """Every SecretStr value, at any depth, goes through `seal`; other fields are plain JSON."""
    dumped = dump_with_secrets(_deep(), lambda v: f"<{v}>")
    assert dumped == {
        "account": {"user": "ada", "password": "<pw-1>"},
        "maybe": {"user": "bob", "password": "<pw-2>"},
        "tokens": ["<t-1>", "<t-2>"],
        "by_site": {"x": "<s-1>"},
        "pair": ["label", "<p-1>"],
        "pin": "<1234>",
        "note": "plain",
    }


def test_mask_secret_fields_masks_by_the_model_not_by_the_name() -> None:
    """The mask follows the model's types: `user` stays, `password` and the lists are masked;
    a field the model does not know is left alone; a None optional stays None."""
    data = dump_with_secrets(_deep(), lambda v: v)
    data["extra"] = "kept"
    masked = mask_secret_fields(Deep, data)
    assert masked["account"] == {"user": "ada", "password": SECRET_MASK}
    assert masked["maybe"] == {"user": "bob", "password": SECRET_MASK}
    assert masked["tokens"] == [SECRET_MASK, SECRET_MASK]
    assert masked["by_site"] == {"x": SECRET_MASK}
    assert masked["pair"] == ["label", SECRET_MASK]
    assert masked["pin"] == SECRET_MASK
    assert (masked["note"], masked["extra"]) == ("plain", "kept")
    assert mask_secret_fields(Deep, {**data, "maybe": None})["maybe"] is None
    assert data["account"]["password"] == "pw-1"  # the input is not changed in place


def test_map_secret_fields_round_trips_through_the_model() -> None:
    """Mapping there and back (as sealing and opening do) validates to the same values."""
    sealed = dump_with_secrets(_deep(), lambda v: v[::-1])
    opened = map_secret_fields(Deep, sealed, lambda v: v[::-1])
    again = Deep.model_validate(opened)
    assert again.account.password.get_secret_value() == "pw-1"
    assert [t.get_secret_value() for t in again.tokens] == ["t-1", "t-2"]
    assert again.pair[1].get_secret_value() == "p-1"
