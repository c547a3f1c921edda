"""Shared CLI plumbing: settings from the environment plus flags, logging, the registry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from portwright.settings import Settings, SettingsError, load_settings

__all__ = ["add_settings_flags", "settings_from"]


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data directory (PORTWRIGHT_DATA_DIR)")
    parser.add_argument(
        "--database-url", help="app database URL (PORTWRIGHT_DATABASE_URL); default SQLite"
    )


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the configuration file and the environment, with command-line flags
    taking precedence. Invalid settings end the command (exit 2) with one line per problem,
    naming the setting."""
    values: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        values["data_dir"] = args.data_dir
    if getattr(args, "database_url", None):
        values["database_url"] = args.database_url
    values.update(overrides)
    try:
        return load_settings(**values)
    except SettingsError as exc:
        print(f"portwright: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
