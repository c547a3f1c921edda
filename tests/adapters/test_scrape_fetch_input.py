"""The scrape adapter's fetch step reads its input once: the dict `run` dumped from the
job's validated input is taken as that input; any other dict is validated as before."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portwright.adapters.scrape import ScrapeAdapter, ScrapeInput


def test_the_dict_run_dumped_is_read_as_the_jobs_input_and_others_are_validated() -> None:
    adapter = ScrapeAdapter()
    job_input = ScrapeInput(url="https://example.com/a", extract={"t": {"selector": "h1"}})
    data = job_input.model_dump(mode="json")
    adapter._dumped = (data, job_input)
    assert adapter._read(data) is job_input  # the very dict: no second validation
    equal = dict(data)  # an equal dict, not the one dumped: validated afresh
    read = adapter._read(equal)
    assert read == job_input
    assert read is not job_input
    with pytest.raises(ValidationError):  # another dict is still validated
        adapter._read({**data, "engine": "warp"})
    with pytest.raises(ValidationError):
        ScrapeAdapter()._read({"url": ""})  # nothing dumped yet: validated


def test_a_subclass_of_the_input_model_is_validated_as_scrape_input() -> None:
    class Wider(ScrapeInput):
        pass

    adapter = ScrapeAdapter()
    job_input = Wider(url="https://example.com/b")
    data = job_input.model_dump(mode="json")
    adapter._dumped = (data, job_input)
    read = adapter._read(data)
    assert type(read) is ScrapeInput
    assert read.url == job_input.url
