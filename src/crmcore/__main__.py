"""The ``crmcore`` command line (also ``python -m crmcore``): ``crmcore demo`` and ``--version``."""

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
outbox. A report goes to standard output, progress to standard error.

The demo first deletes everything stored in its tenant (and in TENANT-acme, the second tenant
it uses to show isolation), so running it again starts over. Other tenants are not touched."""

_DEMO_EPILOG = """\
examples:
  python -m crmcore demo                                 # ./crm-demo.db, 3,000 customers
  python -m crmcore demo --customers 20000 --seed 7
  python -m crmcore demo --db memory://                  # nothing written to disk
  python -m crmcore demo --db postgresql://postgres@127.0.0.1:5432/test"""


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
        help="load synthetic customers into a store and print a tour of the API",
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
    return parser


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
