"""`portwright operators create | list`: console accounts (the first admin comes from here)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from portwright.cli._common import add_settings_flags, settings_from

__all__ = ["register"]

PASSWORD_ENV = "PORTWRIGHT_OPERATOR_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def register(sub: Any) -> None:
    ops = sub.add_parser("operators", help="console operators: create, list")
    actions = ops.add_subparsers(dest="operators_command", metavar="ACTION", required=True)

    p = actions.add_parser("create", help="create a console operator")
    add_settings_flags(p)
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
    p.add_argument("--tenant", default=None, help="limit to one tenant (name; default: all)")
    p.add_argument(
        "--password-stdin", action="store_true",
        help=f"read the password from stdin (else ${PASSWORD_ENV}, else a prompt)",
    )  # fmt: skip
    p.set_defaults(func=_create)

    p = actions.add_parser("list", help="list console operators")
    add_settings_flags(p)
    p.set_defaults(func=_list)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValueError("--password-stdin read no password (an empty first line)")
        return line
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise ValueError(
            "no terminal to prompt for the password: pass it as one line on stdin with "
            f"--password-stdin, or set ${PASSWORD_ENV}"
        )
    try:
        first = getpass.getpass("password: ")
        again = getpass.getpass("again: ")
    except EOFError:
        raise ValueError(
            f"the password prompt got no input: use --password-stdin or ${PASSWORD_ENV}"
        ) from None
    if again != first:
        raise ValueError("the passwords differ")
    return first


def _create(args: argparse.Namespace) -> int:
    from portwright.console import hash_password
    from portwright.store import Store

    try:
        hashed = hash_password(_password(args))
    except ValueError as exc:
        print(f"operators create: {exc}", file=sys.stderr)
        return 2
    settings = settings_from(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.app_database_url)
    try:
        if store.console.operator_by_email(args.email) is not None:
            print(f"operators create: {args.email} exists already", file=sys.stderr)
            return 1
        tenant_id = store.tenants.ensure(args.tenant).id if args.tenant else None
        op = store.console.create_operator(
            email=args.email, password_hash=hashed, role=args.role, tenant_id=tenant_id
        )
        store.audit.record(
            actor="cli", action="operator.create", target_type="operator", target_id=op.id,
            before=None, after={"email": op.email, "role": op.role, "tenant_id": tenant_id},
            tenant_id=tenant_id,
        )  # fmt: skip
    finally:
        store.close()
    scope = f"tenant {args.tenant}" if args.tenant else "all tenants"
    print(f"operator {op.email} ({op.id}): {op.role}, {scope}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from portwright.store import Store

    settings = settings_from(args)
    store = Store.open(settings.app_database_url)
    try:
        for op in store.console.operators():
            state = "disabled" if op.disabled_at else "active"
            print(f"{op.email}\t{op.role}\t{op.tenant_id or 'all tenants'}\t{state}")
    finally:
        store.close()
    return 0
