"""The `portwright` command. Each sub-command lives in its own module with `register()`;
installed apps and worlds add theirs through the `portwright.commands` entry points (the
sandbox adds `demo`).

Public for those plugins: `add_settings_flags` / `settings_from` (the common flags and
settings), `start_stack` / `Stack` (the one-process stack `up` and `demo` run),
`start_runtime`, `platform_registry`; `portwright.cli.scenarios` is the demo scenarios'
protocol.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from portwright.cli._common import add_settings_flags, settings_from
from portwright.cli._stack import Stack, platform_registry, start_runtime, start_stack

__all__ = [
    "Stack",
    "add_settings_flags",
    "build_parser",
    "main",
    "platform_registry",
    "settings_from",
    "start_runtime",
    "start_stack",
]

# Modules contributing sub-commands; each has `register(subparsers) -> None` and sets
# `func(args) -> int` on the parsers it adds.
COMMAND_MODULES = (
    "portwright.cli._serve",
    "portwright.cli._jobs",
    "portwright.cli._keys",
    "portwright.cli._operators",
    "portwright.cli._doctor",
    "portwright.cli._new",
    "portwright.cli._adapters",
    "portwright.cli._openapi",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portwright",
        description="Durable, observable automation jobs against web portals.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command module that has not landed yet
            raise
        module.register(sub)
    from portwright.plugins import COMMANDS, load_plugins

    for register in load_plugins(COMMANDS).values():  # e.g. the sandbox's `demo`
        register(sub)
    return parser


def _configure_logging() -> None:
    """Every command logs the same way (JSON lines, secrets masked, no traceback locals) from
    its first line on; serving commands configure again with their own settings."""
    from pydantic import ValidationError

    from portwright.observability import configure_logging, install_excepthooks
    from portwright.settings import Settings, SettingsError

    try:
        settings = Settings()
    except (ValidationError, SettingsError):  # the command reports it; until then, defaults
        settings = Settings.model_construct()
    configure_logging(settings)
    install_excepthooks()


def main(argv: Sequence[str] | None = None) -> int:
    from portwright.plugins import PluginError

    try:
        parser = build_parser()
    except PluginError as exc:  # an installed package's command is broken: say which
        print(f"portwright: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
