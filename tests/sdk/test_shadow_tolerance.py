"""The shadow comparison's tolerance: ignored keys, numeric tolerance, exact by default."""

from __future__ import annotations

import pytest

from portwright.sdk import ShadowTolerance, outputs_agree


def test_without_a_tolerance_outputs_must_be_equal_as_json() -> None:
    assert outputs_agree({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1})
    assert not outputs_agree({"a": 1.0, "t": "x"}, {"a": 1.0001, "t": "x"})
    assert not outputs_agree({"a": 1}, {"a": 1, "extra": 2})


def test_ignored_keys_are_left_out_at_their_path_only() -> None:
    tol = ShadowTolerance(ignore={"fetched_at", "meta.request_id"})
    live = {"price": 10, "fetched_at": 1, "meta": {"request_id": "r1", "shop": "s"}}
    shadow = {"price": 10, "fetched_at": 2, "meta": {"request_id": "r2", "shop": "s"}}
    assert outputs_agree(live, shadow, tol)
    assert not outputs_agree(live, {**shadow, "price": 11}, tol)
    moved = {"price": 10, "fetched_at": 1, "meta": {"request_id": "r1", "shop": "t"}}
    assert not outputs_agree(live, moved, tol), "a key not listed still counts"
    nested = {"x": {"fetched_at": 1}}
    assert not outputs_agree(nested, {"x": {"fetched_at": 2}}, tol), "only at its path"
    missing = {k: v for k, v in shadow.items() if k != "fetched_at"}
    assert outputs_agree(live, missing, tol), "an ignored key may be absent"
    rows = ShadowTolerance(ignore={"items.seen_at"})
    assert outputs_agree(
        {"items": [{"v": 1, "seen_at": 1}]}, {"items": [{"v": 1, "seen_at": 9}]}, rows
    )
    assert not outputs_agree({"items": [{"v": 1}]}, {"items": [{"v": 1}, {"v": 2}]}, rows)


def test_numbers_agree_within_the_tolerance() -> None:
    tol = ShadowTolerance(rel_tol=0.01)
    assert outputs_agree({"p": 100.0, "q": [1, 2]}, {"p": 100.5, "q": [1, 2]}, tol)
    assert not outputs_agree({"p": 100.0}, {"p": 102.0}, tol)
    assert outputs_agree({"p": 0.0}, {"p": 0.004}, ShadowTolerance(abs_tol=0.005))
    assert not outputs_agree({"ok": True}, {"ok": 1}, tol), "a bool is not a number"
    assert not outputs_agree({"p": "100"}, {"p": 100}, tol)
    with pytest.raises(ValueError, match="negative"):
        ShadowTolerance(rel_tol=-1)
