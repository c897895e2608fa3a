"""`linecap`: one entry point for running, checking and operating linecap.

Every command reads the same settings as the services. Anything a person must fix (bad
configuration, Redis or the receiver unreachable, Capillary refusing us) is reported as one
line, `linecap: <what is wrong>`, with exit code 2 and no traceback. LINE errors are worded by
the command that calls LINE, so the Capillary wording here only meets Capillary's errors.
"""

from __future__ import annotations

import argparse
import sys

import redis
from kombu.exceptions import KombuError

from cli import (
    backfill,
    channels,
    check,
    dlq,
    history,
    importer,
    reconcile,
    register,
    send_event,
    setup,
    up,
)
from cli.localstack.local_env import load_local_env
from cli.output import NOT_OK, PREREQUISITE, CliError, error_line
from config import ConfigError
from core.errors import (
    ConfigurationError,
    CredentialsError,
    LinecapError,
    TransientError,
)

COMMANDS = (up, channels, setup, send_event, register, check, history, importer, backfill,
            reconcile, dlq)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linecap",
        description="LINE Official Account webhooks to Capillary (InTouch), through Celery. "
                    "Settings come from the environment (REDIS_URL, CAPILLARY_*, LINE_*), "
                    "the same as for the web and worker processes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "up":
        load_local_env()  # what a running `linecap up` set, for commands in another terminal
    try:
        return args.handler(args)
    except CliError as exc:
        error_line(str(exc))
        return exc.exit_code
    except ConfigError as exc:
        error_line(f"configuration error: {exc}")
        return PREREQUISITE
    except redis.RedisError as exc:
        error_line(f"Redis error ({type(exc).__name__}); is Redis running and REDIS_URL right?")
        return PREREQUISITE
    except KombuError as exc:
        error_line(f"could not publish to the broker ({type(exc).__name__}); is Redis running?")
        return PREREQUISITE
    except CredentialsError as exc:
        error_line(f"Capillary: {exc}; check CAPILLARY_USERNAME/PASSWORD or CAPILLARY_OAUTH_*")
        return PREREQUISITE
    except ConfigurationError as exc:
        error_line(f"Capillary: {exc}; check source_account_id in LINE_CHANNELS")
        return PREREQUISITE
    except TransientError as exc:
        error_line(f"Capillary: {exc}; is CAPILLARY_BASE_URL right and Capillary up? "
                   "Try again in a moment")
        return PREREQUISITE
    except LinecapError as exc:
        error_line(str(exc))
        return NOT_OK
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
