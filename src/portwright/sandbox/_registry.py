"""Which services a default sandbox world runs. Each portal module contributes its specs."""

from __future__ import annotations

from portwright.sandbox._world import ServiceSpec

__all__ = ["default_services"]


def default_services() -> list[ServiceSpec]:
    """Every sandbox service, in start order. Portal modules register here as they land."""
    specs: list[ServiceSpec] = []
    from portwright.sandbox import (
        captcha,
        consulate,
        directories,
        idp,
        inbox,
        jobboard,
        library,
        mail,
        proxies,
        scrape,
        shops,
    )

    specs += inbox.specs()
    specs += mail.specs()
    specs += idp.specs()
    specs += captcha.specs()
    specs += captcha.task_specs()
    specs += proxies.specs()
    specs += consulate.specs()
    specs += scrape.specs()
    specs += jobboard.specs()
    specs += directories.specs()
    specs += shops.specs()
    specs += library.specs()
    try:  # localstripe is in the dev extra; without it `portwright up` runs without billing
        import localstripe  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return specs
    from portwright.sandbox import payments

    specs += payments.specs()
    return specs
