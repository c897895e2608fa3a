"""`.venv/bin/python -m bench [--quick]`: run every part and write docs/BENCHMARKS.md.

Everything runs on this machine over loopback; every load loop is bounded in count and time.
Raw results and process logs stay in `.linecap/bench/<run>/` for a look afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import deps
from bench.procs import ROOT

DOC = ROOT / "docs" / "BENCHMARKS.md"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of a few seconds per part (figures not meaningful)")
    parser.add_argument("--parts", default="1,2,3,5",
                        help="comma-separated parts to run (default 1,2,3,5; 4, the footprint, "
                             "comes with them)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the report (default docs/BENCHMARKS.md; "
                             "a --quick run writes only into its run folder unless given)")
    parser.add_argument("--report-only", type=Path, metavar="RESULTS_JSON",
                        help="rewrite the report from a previous run's results.json")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from bench.report import write_report

    if args.report_only:
        results = json.loads(args.report_only.read_text())
        write_report(results, args.out or DOC)
        log(f"wrote {args.out or DOC}")
        return 0
    deps.ensure()
    from bench.run import run_all

    parts = {int(p) for p in args.parts.split(",") if p.strip()}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = ROOT / ".linecap" / "bench" / f"{stamp}-{'quick' if args.quick else 'full'}"
    workdir.mkdir(parents=True, exist_ok=True)
    argv_text = " ".join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    results = run_all(workdir, quick=args.quick, parts=parts, log=log, command=argv_text)
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    out = args.out or (workdir / "BENCHMARKS.md" if args.quick else DOC)
    write_report(results, out)
    log(f"results in {workdir}; report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
