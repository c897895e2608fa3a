"""``python -m sandboxes.capillary``: serve the sandbox over real HTTP (threaded)."""

from __future__ import annotations

import argparse
import logging

from sandboxes.serve import serve

from . import SandboxConfig, create_sandbox_app
from .org import org_from_spec


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Capillary (InTouch) sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--rpm-limit", type=int, default=None)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--accounts", default=None, help="comma-separated valid accountIds")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--not-found-status", type=int, default=400)
    parser.add_argument("--org", default="strict",
                        help="the org's rules: strict (default), lenient, or a JSON object of "
                             "switches (see sandboxes/capillary/org.py)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, build the app and serve until interrupted."""
    args = _parse_args(argv)
    accounts = None
    if args.accounts:
        accounts = {a.strip() for a in args.accounts.split(",") if a.strip()}
    try:
        org = org_from_spec(args.org)
    except ValueError as exc:
        raise SystemExit(f"--org: {exc}") from None
    config = SandboxConfig.from_env(
        org=org,
        valid_accounts=accounts,
        rpm_limit=args.rpm_limit,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        seed=args.seed,
        not_found_status=args.not_found_status,
    )
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serve(create_sandbox_app(config), args.host, args.port, "capillary sandbox listening on {url}")

if __name__ == "__main__":
    main()
