"""The ``crmcore`` command line (also ``python -m crmcore``): ``demo``, ``migrate`` and ``--version``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import crmcore
from crmcore.errors import CrmError, ValidationError

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
crmcore is an embeddable CRM domain library. This command shows it at work."""

_DEMO_DESCRIPTION = """\
Load a reproducible set of synthetic customers into a store, then tour the API: conditions,
counting, ordering and paging, tenant isolation, optimistic concurrency, the event bus and the
outbox, customer history, segments and duplicates. Then simulate four weeks of a service desk
(tickets routed, SLA clocks, escalation, service metrics) and eight weeks of a sales pipeline
(leads routed, reassigned, scored and converted; deals moved through stages, quoted, won and
lost). A report goes to standard output, progress to standard error.

The demo first deletes everything stored in its tenant (and in TENANT-acme, the second tenant
it uses to show isolation), so running it again starts over. Other tenants are not touched."""

_DEMO_EPILOG = """\
examples:
  python -m crmcore demo                                 # ./crm-demo.db, 3,000 customers
  python -m crmcore demo --customers 20000 --seed 7
  python -m crmcore demo --db memory://                  # nothing written to disk
  python -m crmcore demo --db postgresql://postgres@127.0.0.1:5432/test"""

_MIGRATE_DESCRIPTION = """\
Create or upgrade crmcore's tables in a SQL database with the migrations shipped in this version
of crmcore. The revision is kept in the table crm_alembic_version; other tables are not touched.
With --check, nothing is changed: the command reports the revision and how the tables differ from
what this version expects, and exits 1 unless they match."""

_MIGRATE_EPILOG = """\
examples:
  python -m crmcore migrate --db sqlite:///crm.db
  python -m crmcore migrate --db postgresql://app@db.example.com/crm --check"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give 1 to 1,000,000")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``crmcore`` command."""
    from crmcore.demo import DEFAULT_DB, DEFAULT_TENANT

    parser = argparse.ArgumentParser(
        prog="crmcore", description=_DESCRIPTION, epilog="Run 'crmcore demo --help' for the demo's options."
    )
    parser.add_argument("--version", action="version", version=f"crmcore {crmcore.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="load synthetic customers, simulate a service desk and a sales pipeline, print a tour",
        description=_DEMO_DESCRIPTION,
        epilog=_DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="URL",
        help=f"store URL: memory://, sqlite:///FILE, sqlite:// or postgresql://... (default: {DEFAULT_DB})",
    )
    demo.add_argument(
        "--customers",
        type=_positive,
        default=3000,
        metavar="N",
        help="how many customers to generate (default: 3000)",
    )
    demo.add_argument(
        "--seed", type=_seed, default=42, metavar="S", help="random seed; same seed, same data (default: 42)"
    )
    demo.add_argument(
        "--tenant",
        default=DEFAULT_TENANT,
        metavar="T",
        help=f"tenant to load into; it is emptied first (default: {DEFAULT_TENANT})",
    )
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade crmcore's tables in a SQL database",
        description=_MIGRATE_DESCRIPTION,
        epilog=_MIGRATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument(
        "--db", required=True, metavar="URL", help="database URL: sqlite:///FILE or postgresql://..."
    )
    migrate.add_argument(
        "--revision", default="head", metavar="REV", help="revision to upgrade to (default: head, the newest)"
    )
    migrate.add_argument("--check", action="store_true", help="change nothing; exit 1 unless up to date")
    return parser


def _migrate(db: str, revision: str, check_only: bool) -> int:
    """Run ``crmcore migrate``; returns the exit code."""
    from sqlalchemy.engine import make_url

    from crmcore.storage.sql import migrate

    try:
        shown = make_url(db).render_as_string(hide_password=True)
    except Exception:
        shown = db
    try:
        before = migrate.current_revision(db)
        head = migrate.head_revision()
        if check_only:
            differences = migrate.check(db)
            print(f"{shown}: crmcore schema at revision {before or '(none)'}, newest is {head}")
            for difference in differences:
                print(f"  {difference}")
            in_sync = before == head and not differences
            print(
                "up to date" if in_sync else "not up to date: run 'crmcore migrate' (or your own migrations)"
            )
            return 0 if in_sync else 1
        migrate.upgrade(db, revision)
        after = migrate.current_revision(db)
    except ValidationError as exc:
        print(f"crmcore migrate: error: {exc}", file=sys.stderr)
        return 2
    except CrmError as exc:
        print(f"crmcore migrate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if after == before:
        print(f"{shown}: crmcore schema already at revision {after}")
    else:
        print(f"{shown}: crmcore schema upgraded from revision {before or '(none)'} to {after}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crmcore`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed them
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "migrate":
        return _migrate(args.db, args.revision, args.check)

    from crmcore.demo import DemoOptions, run_demo

    options = DemoOptions(db=args.db, customers=args.customers, seed=args.seed, tenant=args.tenant)
    try:
        run_demo(options, out=sys.stdout, err=sys.stderr)
    except ValidationError as exc:
        print(f"crmcore demo: error: {exc}", file=sys.stderr)
        return 2
    except CrmError as exc:
        print(f"crmcore demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncrmcore demo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
