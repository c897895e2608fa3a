"""An import batch against the sandbox: each row's marker, its own dead letter when refused,
busy users as single rows, and the calls a batch costs."""

from __future__ import annotations

import pytest

from core.store.import_markers import ImportMarkers
from tasks.imports.batch import import_rows
from tasks.imports.rows import import_task_id
from tests.helpers import CHANNEL_ID, new_user_id


@pytest.fixture
def runtime(make_runtime):
    return make_runtime()


def row(mobile: str, user: str | None = None) -> dict:
    return {"mobile": mobile, "line_user_id": user or new_user_id(), "name": None}


def test_rows_end_with_their_own_markers_and_dead_letters(runtime, sandbox):
    channel = runtime.channel(CHANNEL_ID)
    taken = new_user_id()
    import_rows(runtime, CHANNEL_ID, [row("66800000031", taken)])
    rows = [row("66800000032"), row("66800000033", taken), row("66800000031", taken)]
    published: list[str] = []
    assert import_rows(runtime, CHANNEL_ID, rows,
                       publish=lambda ch, r, task_id: published.append(task_id)) == "applied"
    markers = ImportMarkers(runtime.redis)
    ids = [import_task_id(channel, r["mobile"], r["line_user_id"]) for r in rows]
    assert [markers.outcome(i) for i in ids] == ["registered", "failed", "registered"]
    letter = runtime.dead_letters.get(ids[1])
    assert letter.task == "linecap.import_user" and letter.error_class == "identity_conflict"
    assert letter.event == rows[1], "replayable as a single row"
    assert published == []


def test_a_batch_costs_two_calls_and_a_busy_row_goes_on_alone(runtime, sandbox):
    rows = [row(f"6680000004{i}") for i in range(5)]
    published: list[str] = []
    with runtime.state.user_lock(CHANNEL_ID, rows[0]["line_user_id"]):
        import_rows(runtime, CHANNEL_ID, rows,
                    publish=lambda ch, r, task_id: published.append(r.line_user_id))
    assert published == [rows[0]["line_user_id"]]
    assert [c["path"] for c in sandbox.calls()] == ["/v2/customers/bulk"] * 2
