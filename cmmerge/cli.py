"""The ``cmmerge`` command (minimal placeholder: the lead's version replaces this file)."""

from __future__ import annotations

import argparse
import sys

from cmmerge.runner import run_main


def build_parser() -> argparse.ArgumentParser:
    from cmmerge.merge.cli import register as register_merge

    parser = argparse.ArgumentParser(prog="cmmerge")
    sub = parser.add_subparsers(dest="command", required=True)
    register_merge(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
