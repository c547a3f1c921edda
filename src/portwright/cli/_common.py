"""Shared CLI plumbing: settings from the environment plus flags, logging, the registry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from portwright.settings import Settings

__all__ = ["add_settings_flags", "settings_from"]


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data directory (PORTWRIGHT_DATA_DIR)")
    parser.add_argument(
        "--database-url", help="app database URL (PORTWRIGHT_DATABASE_URL); default SQLite"
    )


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, with command-line flags taking precedence."""
    values: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        values["data_dir"] = args.data_dir
    if getattr(args, "database_url", None):
        values["database_url"] = args.database_url
    values.update(overrides)
    return Settings(**values)
