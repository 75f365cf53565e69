"""`leadx user create|reset-password`: the people who log in to the web portal (docs/portal.md).

The password is never an argument (it would stay in the shell's history and in `ps`): it is asked
for twice on a terminal without being shown, or read from the first line of stdin with
`--password-stdin`, or from LEADX_USER_PASSWORD."""

from __future__ import annotations

import getpass
import os
import sys

from leadx.cli.database import sessions

PASSWORD_VARIABLE = "LEADX_USER_PASSWORD"


class PasswordUnavailable(Exception):
    pass


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    given = os.environ.get(PASSWORD_VARIABLE)
    if given:
        return given
    if not sys.stdin.isatty():
        raise PasswordUnavailable(f"no terminal to ask for the password on: give it on stdin with --password-stdin, "
                                  f"or in {PASSWORD_VARIABLE}")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise PasswordUnavailable("the two passwords differ")
    return first


def _run(change) -> int:
    from leadx.accounts.ids import UnknownAccount
    from leadx.accounts.people import PersonError

    try:
        with sessions()() as session:
            return change(session)
    except PersonError as error:
        print(f"leadx: {error.field}: {error.message}", file=sys.stderr)
    except (UnknownAccount, PasswordUnavailable) as error:
        print(f"leadx: {error}", file=sys.stderr)
    return 1


def cmd_user_create(args) -> int:
    from leadx.accounts import people

    def create(session) -> int:
        if args.operator:
            kind, account = people.OPERATOR, ""
        else:
            kind, account = people.account_kind(session, args.account), args.account
        people.normalise_email(args.email)  # a typing mistake is said before the password is asked for
        password = read_password(args.password_stdin)
        person = people.create_person(session, args.email, password, kind, account, args.role)
        where = "an operator" if kind == people.OPERATOR else f"{kind} {account}, role {person.role}"
        print(f"person {person.id} created: {where}; they log in to the portal with their email")
        return 0

    if not args.operator and not args.account:
        print("leadx: give --account ID (a buyer's or a seller's) or --operator", file=sys.stderr)
        return 2
    if args.operator and args.account:
        print("leadx: an operator belongs to no account: give --account or --operator, not both", file=sys.stderr)
        return 2
    return _run(create)


def cmd_user_reset_password(args) -> int:
    from leadx.accounts import people

    def reset(session) -> int:
        people.normalise_email(args.email)
        person = people.reset_password(session, args.email, read_password(args.password_stdin))
        print(f"person {person.id}: password changed; their sessions have ended")
        return 0

    return _run(reset)


def add_commands(commands) -> None:
    user = commands.add_parser("user", help="people who log in to the web portal") \
        .add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="create a person of a buyer or seller account, or an operator")
    create.add_argument("--email", required=True)
    create.add_argument("--account", default="", help="the buyer's or seller's id the person belongs to")
    create.add_argument("--role", choices=["owner", "member", "read-only"], default="member",
                        help="in the account (default member)")
    create.add_argument("--operator", action="store_true", help="an operator of the exchange (no account)")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    create.set_defaults(func=cmd_user_create)
    reset = user.add_parser("reset-password", help="set a person's password; their sessions end")
    reset.add_argument("--email", required=True)
    reset.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    reset.set_defaults(func=cmd_user_reset_password)
