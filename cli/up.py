"""`linecap up`: the whole local system (Redis, sandboxes, web, worker, Flower) in one terminal."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "up", help="run the whole system locally until Ctrl-C",
        description="Start Redis (embedded unless REDIS_URL is set), the Capillary and LINE "
                    "sandboxes (unless CAPILLARY_BASE_URL / LINE_API_BASE_URL are set), the "
                    "webhook receiver, a worker and Flower; Ctrl-C stops them all.")
    parser.add_argument("--state-dir", default=".linecap", type=Path, metavar="DIR",
                        help="where the embedded Redis and the demo channel keep their files "
                             "(default: %(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cli.localstack.stack import StackOptions, run_stack

    return run_stack(StackOptions(state_dir=args.state_dir))
