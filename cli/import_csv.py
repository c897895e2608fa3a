"""Read a bulk-import CSV (`mobile,line_user_id[,name]`) and report every bad row precisely.

Each problem carries the file line, the column and what is wrong, and the rejected rows are
written beside the file as `<csv>.errors.csv` so they can be fixed and imported again.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from cli.output import CliError
from core.validation import (
    line_user_id_problem,
    mobile_problem,
    name_problem,
    normalise_mobile,
)
from tasks.imports.rows import ImportRow

REQUIRED_COLUMNS = ("mobile", "line_user_id")
COLUMNS = (*REQUIRED_COLUMNS, "name")
ERROR_COLUMNS = ("line", "column", "problem", *COLUMNS)


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str
    problem: str
    values: dict[str, str]


@dataclass
class ImportFile:
    """The valid rows (with their line numbers) and the problems, in file order."""

    rows: list[tuple[int, ImportRow]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def bad_lines(self) -> int:
        return len({p.line for p in self.problems})


def read_import_file(path: Path) -> ImportFile:
    """Parse and validate the whole file; a missing file or wrong header is a CliError."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _validate(csv.DictReader(handle))
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as exc:
        raise CliError(f"{path}: not a readable CSV ({exc})") from None


def errors_path(path: Path) -> Path:
    return path.with_name(path.name + ".errors.csv")


def write_errors(path: Path, problems: list[RowProblem]) -> Path | None:
    """Write `<csv>.errors.csv`, or remove a stale one when the file is clean now."""
    target = errors_path(path)
    if not problems:
        target.unlink(missing_ok=True)
        return None
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ERROR_COLUMNS)
        for p in problems:
            writer.writerow([p.line, p.column, p.problem, *(p.values.get(c, "") for c in COLUMNS)])
    return target


def _validate(reader: csv.DictReader) -> ImportFile:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        raise CliError("the CSV header must be mobile,line_user_id[,name] "
                       f"(found: {','.join(header) or 'nothing'})")
    reader.fieldnames = header
    result = ImportFile()
    seen_rows: dict[tuple[str, str], int] = {}
    line_user_at: dict[str, int] = {}
    mobile_at: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        values = {c: (record.get(c) or "").strip() for c in COLUMNS}
        problems = _field_problems(record, values)
        if not problems:
            mobile, user_id = normalise_mobile(values["mobile"]), values["line_user_id"]
            problems = _clashes(mobile, user_id, seen_rows, line_user_at, mobile_at)
            if not problems:
                seen_rows[(mobile, user_id)] = line
                line_user_at[user_id] = line
                mobile_at[mobile] = line
                result.rows.append((line, ImportRow(mobile, user_id, values["name"] or None)))
        result.problems += [RowProblem(line, column, text, values) for column, text in problems]
    return result


def _field_problems(record: dict, values: dict[str, str]) -> list[tuple[str, str]]:
    if None in record:  # DictReader files surplus cells under the key None
        return [("(row)", f"{len(record[None])} more cell(s) than the header has columns")]
    checks = (("mobile", mobile_problem), ("line_user_id", line_user_id_problem),
              ("name", name_problem))
    return [(column, problem) for column, check in checks
            if (problem := check(values[column]))]


def _clashes(mobile: str, user_id: str, seen_rows: dict[tuple[str, str], int],
             line_user_at: dict[str, int], mobile_at: dict[str, int]) -> list[tuple[str, str]]:
    """A row repeated, or one LINE user / one mobile paired with two different partners."""
    if (mobile, user_id) in seen_rows:
        return [("(row)", f"duplicate of line {seen_rows[(mobile, user_id)]}")]
    if user_id in line_user_at:
        return [("line_user_id", f"same LINE user as line {line_user_at[user_id]}, "
                                 "with another mobile")]
    if mobile in mobile_at:
        return [("mobile", f"same mobile as line {mobile_at[mobile]}, with another LINE user")]
    return []
