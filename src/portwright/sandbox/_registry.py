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
    specs += captcha.specs()
    specs += captcha.task_specs()
    specs += proxies.specs()
    specs += consulate.specs()
    specs += scrape.specs()
    specs += jobboard.specs()
    specs += directories.specs()
    specs += shops.specs()
    specs += library.specs()
    return specs
