"""`linecap import`: register many people from a CSV through the import task and its queue.

Rows become `linecap.import_user` messages with ids derived from their content, so running the
same file again enqueues nothing that is already done. The command then waits on the outcome
markers the task writes, and prints registered / already there / failed.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery

from cli import context
from cli.import_csv import ImportFile, read_import_file, write_errors
from cli.output import NOT_OK, print_fields
from cli.progress import Progress
from cli.validation import positive_int_arg
from config import LineChannel, Settings
from core.store.import_markers import ImportMarkers
from tasks.imports.rows import DONE_OUTCOMES, import_task_id
from workers.messages import send
from workers.outcomes import Outcome
from workers.registry import IMPORT_BATCH_TASK, IMPORTS_QUEUE
from workers.runtime import Runtime

POLL_SECONDS = 0.5


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "import", help="register people in bulk from a CSV (mobile,line_user_id[,name])",
        description="Validate a CSV with header mobile,line_user_id[,name] (bad rows go to "
                    "<csv>.errors.csv), remember each mobile for its LINE user and enqueue the "
                    "rows in batches on the 'imports' queue (bulk lane: each batch registers "
                    "its INSTORE profiles in one call, then their LINE profiles), then wait for "
                    "every row. Running "
                    "the same file again skips rows already done. Failed rows end in the "
                    "dead-letter store (linecap dlq). Exit code 0 only when every row is done.")
    parser.add_argument("csv", type=Path, help="the CSV file")
    parser.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    parser.add_argument("--dry-run", action="store_true",
                        help="only validate the file and write the errors file")
    parser.add_argument("--no-wait", action="store_true",
                        help="enqueue and return without waiting for the workers")
    parser.add_argument("--timeout", type=positive_int_arg, default=120, metavar="SECONDS",
                        help="stop waiting when no row has finished for this long "
                             "(default: %(default)s)")
    parser.set_defaults(handler=run)


@dataclass
class ImportRun:
    """Counts for the summary, and the task ids still being waited for."""

    skipped: int = 0
    enqueued: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for value in self.outcomes.values() if value == outcome)

    @property
    def pending(self) -> int:
        return len(self.enqueued) - len(self.outcomes)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    parsed = read_import_file(args.csv)
    errors_file = write_errors(args.csv, parsed.problems)
    if args.dry_run:
        _print_summary(parsed, errors_file, None)
        return NOT_OK if parsed.problems else 0
    runtime = context.runtime(config)
    markers = ImportMarkers(runtime.redis)
    outcome = enqueue_rows(runtime, config, channel, parsed, markers)
    if not args.no_wait and outcome.enqueued:
        wait_for_rows(markers, outcome, args.timeout)
    _print_summary(parsed, errors_file, outcome, waited=not args.no_wait)
    all_done = not parsed.problems and outcome.count(Outcome.FAILED) == 0 and outcome.pending == 0
    return 0 if all_done else NOT_OK


def enqueue_rows(runtime: Runtime, config: Settings, channel: LineChannel, parsed: ImportFile,
                 markers: ImportMarkers) -> ImportRun:
    """Remember each identity and publish the rows in batches (one batch registration call each
    for INSTORE and LINE), unless an earlier run already did the row."""
    ids = [import_task_id(channel, row.mobile, row.line_user_id)
           for _, row in parsed.rows]
    earlier = markers.outcomes(ids)
    result = ImportRun()
    progress = Progress("enqueuing", len(ids))
    batch: list[dict] = []
    with context.celery_app(config) as app:
        for done, (task_id, (_, row)) in enumerate(zip(ids, parsed.rows, strict=True), 1):
            if earlier[task_id] in DONE_OUTCOMES:
                result.skipped += 1
            else:
                runtime.state.remember_identity(row.line_user_id, row.mobile, row.name)
                markers.clear(task_id)  # a failure from an earlier run is being retried
                batch.append(row.to_payload())
                result.enqueued.append(task_id)
            if len(batch) >= config.batch_size or (batch and done == len(ids)):
                _send_batch(app, channel, batch, result.enqueued[-len(batch):])
                batch = []
            progress.update(done)
    progress.close()
    return result


def _send_batch(app: Celery, channel: LineChannel, rows: list[dict], row_ids: list[str]) -> None:
    digest = hashlib.sha256(",".join(row_ids).encode()).hexdigest()[:20]
    send(app, IMPORT_BATCH_TASK, {"channel_id": channel.channel_id, "rows": rows},
         f"import-batch-{digest}")


def wait_for_rows(markers: ImportMarkers, result: ImportRun, stall_seconds: float) -> None:
    """Poll the outcome markers until every enqueued row has one, or nothing moves for a while."""
    progress = Progress("importing", len(result.enqueued))
    last_change = time.monotonic()
    while result.pending and time.monotonic() - last_change < stall_seconds:
        waiting = [i for i in result.enqueued if i not in result.outcomes]
        finished = {i: o for i, o in markers.outcomes(waiting).items() if o is not None}
        if finished:
            result.outcomes.update(finished)
            last_change = time.monotonic()
        progress.update(len(result.outcomes))
        if result.pending:
            time.sleep(POLL_SECONDS)
    progress.close()


def _print_summary(parsed: ImportFile, errors_file: Path | None, result: ImportRun | None,
                   waited: bool = True) -> None:
    rows = len(parsed.rows) + parsed.bad_lines
    invalid = str(parsed.bad_lines) + (f"  (details in {errors_file})" if errors_file else "")
    fields: list[tuple[str, object]] = [("rows", rows), ("invalid", invalid)]
    if result is None:
        fields.append(("would enqueue", f"{len(parsed.rows)}  (dry run: nothing sent)"))
    else:
        fields += [("done before", f"{result.skipped}  (skipped)"),
                   ("enqueued", len(result.enqueued))]
        if waited:
            failed = result.count(Outcome.FAILED)
            fields += [("registered", result.count(Outcome.REGISTERED)),
                       ("already there", result.count(Outcome.ALREADY_THERE)),
                       ("failed", f"{failed}  (see: linecap dlq list)" if failed else 0)]
            if result.pending:
                fields.append(("still running", f"{result.pending}  (is a worker consuming "
                                                f"'{IMPORTS_QUEUE}'? run the import again to "
                                                "see them counted)"))
    print_fields(fields)
