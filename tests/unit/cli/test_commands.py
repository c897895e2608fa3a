"""The `linecap` CLI in-process: parsing, validation, one-line errors, channels, import, dlq."""

from __future__ import annotations

import csv
import json
import re

import pytest

from cli.import_csv import read_import_file
from cli.localstack.ports import free_port
from cli.main import main
from cli.progress import Progress
from core.errors import ConfigurationError
from core.store.dead_letters import DeadLetterStore
from core.store.import_markers import ImportMarkers
from core.store.state import StateStore
from core.validation import line_user_id_problem, mobile_problem, normalise_mobile
from tasks.events.backfill import backfill_event
from tasks.imports.rows import import_task_id
from tests.helpers import (
    ACCESS_TOKEN,
    CHANNEL,
    CHANNEL_ID,
    CHANNEL_SECRET,
    channels_json,
    new_user_id,
)
from workers.outcomes import Outcome

COMMANDS = [
    ["up"], ["channels"], ["send-event"], ["register"], ["check"], ["import"],
    ["backfill-followers"], ["reconcile"], ["history"], ["dlq"], ["dlq", "list"],
    ["dlq", "show"], ["dlq", "replay"], ["dlq", "purge"], ["setup"], ["setup", "check"],
    ["setup", "webhook"],
]
SECOND_CHANNEL = {"name": "second", "channel_id": "1650000002",
                  "channel_secret": "fedcba9876543210fedcba9876543210",
                  "access_token": "second-access-token", "source_account_id": "line-account-2"}


def summary(out: str) -> dict[str, str]:
    """`label   value  (note)` lines as {label: value}."""
    fields = [re.split(r"\s{2,}", line.strip(), maxsplit=2) for line in out.splitlines()]
    return {parts[0]: parts[1] for parts in fields if len(parts) > 1}


def write_csv(path, rows, header=("mobile", "line_user_id", "name")):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- parser and help ---------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert f"usage: linecap {' '.join(command)}" in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("up", "channels", "setup", "send-event", "register", "check", "import",
                 "backfill-followers", "reconcile", "history", "dlq"):
        assert f"    {name}" in out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "usage: linecap" in capsys.readouterr().err


def test_up_hands_the_state_dir_to_run_stack(monkeypatch, tmp_path):
    seen = {}

    def fake_run_stack(options):
        seen["state_dir"] = options.state_dir
        return 7

    monkeypatch.setattr("cli.localstack.stack.run_stack", fake_run_stack)
    assert main(["up", "--state-dir", str(tmp_path)]) == 7
    assert seen["state_dir"] == tmp_path


# -- validation --------------------------------------------------------------------------
@pytest.mark.parametrize("mobile", ["66812345678", "+66812345678", "12345678", "1" * 15])
def test_valid_mobiles(mobile):
    assert mobile_problem(mobile) is None


@pytest.mark.parametrize("mobile", ["1234567", "1" * 16, "66-812-345", "+", "0812 345 678", ""])
def test_invalid_mobiles(mobile):
    assert mobile_problem(mobile)


def test_mobile_is_normalised_without_plus():
    assert normalise_mobile("+66812345678") == "66812345678"


@pytest.mark.parametrize("user_id", ["U" + "A" * 32, "u" + "a" * 32, "U" + "a" * 31, "", "Uxyz"])
def test_invalid_line_user_ids(user_id):
    assert line_user_id_problem(user_id)


def test_register_rejects_a_bad_mobile_with_a_clear_message(env, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["register", "--mobile", "12ab", "--line-user", new_user_id()])
    assert exited.value.code == 2
    assert "argument --mobile: mobile must be 8 to 15 digits (0-9) with an optional leading + " \
        "(e.g. 66812345678); got '12ab'" in capsys.readouterr().err


def test_check_rejects_an_uppercase_line_user_id(env, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--line-user", "U" + "ABCDEF01" * 4])
    assert exited.value.code == 2
    assert "LINE user id must be U followed by 32 lowercase hex characters" in \
        capsys.readouterr().err


def test_check_needs_exactly_one_of_line_user_or_mobile(env, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--line-user", new_user_id(), "--mobile", "66812345678"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# -- one-line errors ---------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["channels"],
    ["send-event", "follow", "--user", "U" + "0" * 32],
    ["register", "--mobile", "66812345678", "--line-user", "U" + "0" * 32],
    ["check", "--mobile", "66812345678"],
    ["import", "users.csv", "--dry-run"],
    ["backfill-followers"],
    ["dlq", "list"],
    ["dlq", "replay", "--all"],
], ids=lambda c: c[0] if c[0] != "dlq" else " ".join(c[:2]))
def test_configuration_error_is_one_line_and_exit_2(command, env, capsys):
    env.delenv("CAPILLARY_PASSWORD")
    assert main(command) == 2
    captured = capsys.readouterr()
    assert captured.err == "linecap: configuration error: CAPILLARY_PASSWORD is not set\n"
    assert "Traceback" not in captured.out + captured.err


def test_unreachable_redis_is_one_line_and_exit_2(env, capsys):
    env.setenv("REDIS_URL", f"redis://:hunter22@127.0.0.1:{free_port()}/0")
    assert main(["dlq", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("linecap: cannot reach Redis at redis://:***@127.0.0.1:")
    assert err.count("\n") == 1 and "hunter22" not in err


def test_unreachable_capillary_is_one_line_and_exit_2(redis, capsys):
    assert main(["check", "--line-user", new_user_id()]) == 2
    captured = capsys.readouterr()
    assert captured.err == "linecap: Capillary: GET /v2/customers/lookup/customerDetails: " \
        "ConnectionError; is CAPILLARY_BASE_URL right and Capillary up? Try again in a moment\n"
    assert captured.out == ""


def test_unknown_channel_names_the_configured_ones(env, capsys):
    assert main(["check", "--mobile", "66812345678", "--channel", "999"]) == 2
    assert capsys.readouterr().err == \
        f"linecap: channel 999 is not configured (configured: {CHANNEL_ID})\n"


def test_several_channels_need_a_choice(env, capsys):
    env.setenv("LINE_CHANNELS", channels_json(SECOND_CHANNEL))
    assert main(["send-event", "follow", "--user", new_user_id()]) == 2
    assert "several channels are configured; choose one with --channel" in \
        capsys.readouterr().err


def test_receiver_down_is_one_line(env, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["send-event", "follow", "--user", new_user_id(), "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"linecap: cannot reach the receiver at {url}/webhooks/line/")
    assert err.count("\n") == 1


# -- channels ----------------------------------------------------------------------------
def test_channels_masks_secrets_and_shows_webhook_urls(env, capsys):
    env.setenv("PORT", "8123")
    assert main(["channels"]) == 0
    out = capsys.readouterr().out
    assert CHANNEL_SECRET not in out and ACCESS_TOKEN not in out
    assert CHANNEL_SECRET[:4] + "…" in out and ACCESS_TOKEN[:4] + "…" in out
    assert f"http://127.0.0.1:8123/webhooks/line/{CHANNEL_ID}" in out
    assert "http://127.0.0.1:8123/webhooks/line works too" in out


def test_channels_with_two_channels_and_a_public_base_url(env, capsys):
    env.setenv("LINE_CHANNELS", channels_json(SECOND_CHANNEL))
    assert main(["channels", "--base-url", "https://hooks.example.com/"]) == 0
    out = capsys.readouterr().out
    assert "https://hooks.example.com/webhooks/line/1650000002" in out
    assert "line-account-2" in out and SECOND_CHANNEL["channel_secret"] not in out
    assert "works too" not in out


# -- import: file validation -------------------------------------------------------------
def test_import_file_reports_each_problem_with_line_and_column(tmp_path):
    good = new_user_id()
    path = write_csv(tmp_path / "users.csv", [
        ["66812345678", good, "Ann"],
        ["123", new_user_id(), ""],
        ["66812345679", "U123", ""],
        ["66812345678", good, "Ann"],
        ["+66812345670", good, ""],
        ["66812345671", new_user_id(), "Bob", "surplus"],
    ])
    parsed = read_import_file(path)
    assert [(line, row.mobile) for line, row in parsed.rows] == [(2, "66812345678")]
    assert [(p.line, p.column) for p in parsed.problems] == [
        (3, "mobile"), (4, "line_user_id"), (5, "(row)"), (6, "line_user_id"), (7, "(row)")]
    assert "duplicate of line 2" in parsed.problems[2].problem
    assert "same LINE user as line 2" in parsed.problems[3].problem


def test_import_with_a_wrong_header_is_one_line(env, tmp_path, capsys):
    path = write_csv(tmp_path / "users.csv", [["66812345678"]], header=("phone",))
    assert main(["import", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err == "linecap: the CSV header must be " \
        "mobile,line_user_id[,name] (found: phone)\n"


def test_import_dry_run_writes_the_errors_file_and_sends_nothing(env, tmp_path, capsys):
    path = write_csv(tmp_path / "users.csv", [
        ["66812345678", new_user_id(), "Ann"], ["12", new_user_id(), ""]])
    assert main(["import", str(path), "--dry-run"]) == 1
    with (tmp_path / "users.csv.errors.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["line"], r["column"], r["mobile"]) for r in rows] == [("3", "mobile", "12")]
    assert "8 to 15 digits" in rows[0]["problem"]
    out = capsys.readouterr().out
    assert summary(out)["would enqueue"] == "1" and "users.csv.errors.csv" in out


def test_a_clean_file_removes_a_stale_errors_file(env, tmp_path):
    stale = tmp_path / "users.csv.errors.csv"
    stale.write_text("line,column,problem\n")
    path = write_csv(tmp_path / "users.csv", [["66812345678", new_user_id(), ""]])
    assert main(["import", str(path), "--dry-run"]) == 0
    assert not stale.exists()


# -- import: enqueueing ------------------------------------------------------------------
def test_import_task_ids_are_deterministic_per_channel_and_row_and_keyed():
    from dataclasses import replace

    user = new_user_id()
    first = import_task_id(CHANNEL, "66812345678", user)
    assert first == import_task_id(CHANNEL, "66812345678", user)
    assert first != import_task_id(replace(CHANNEL, channel_id="1650000002"), "66812345678", user)
    assert first != import_task_id(CHANNEL, "66812345679", user)
    # Keyed by the channel secret: without it, trying every mobile finds nothing.
    assert first != import_task_id(replace(CHANNEL, channel_secret="another-secret-0000"),
                                   "66812345678", user)
    assert first.startswith("import-") and "66812345678" not in first


def test_import_enqueues_valid_rows_and_remembers_identities(redis, celery, tmp_path, capsys):
    users = [new_user_id() for _ in range(3)]
    path = write_csv(tmp_path / "users.csv", [
        ["+66800000001", users[0], "Ann"], ["66800000002", users[1], ""], ["bad", users[2], ""]])
    assert main(["import", str(path), "--no-wait"]) == 1  # one invalid row
    [batch] = celery.sent  # the valid rows, in one batch (CAPILLARY_BATCH_SIZE rows each)
    assert (batch["name"], batch["queue"], batch["retry"]) == (
        "linecap.import_rows", "imports", False)
    assert batch["kwargs"] == {"channel_id": CHANNEL_ID, "rows": [
        {"mobile": "66800000001", "line_user_id": users[0], "name": "Ann"},
        {"mobile": "66800000002", "line_user_id": users[1], "name": None}]}
    state = StateStore(redis, 60, 60, 60)
    assert state.identity_hint(users[0]) == {"mobile": "66800000001", "name": "Ann"}
    assert state.identity_hint(users[1]) == {"mobile": "66800000002"}
    assert state.identity_hint(users[2]) == {}
    assert celery.closed


def test_import_again_skips_rows_already_done(redis, celery, tmp_path, capsys):
    users = [new_user_id() for _ in range(2)]
    path = write_csv(tmp_path / "users.csv", [
        ["66800000001", users[0], ""], ["66800000002", users[1], ""]])
    ImportMarkers(redis).record(import_task_id(CHANNEL, "66800000001", users[0]),
                                Outcome.REGISTERED)
    ImportMarkers(redis).record(import_task_id(CHANNEL, "66800000002", users[1]), "failed")
    main(["import", str(path), "--no-wait"])
    assert [row["line_user_id"] for m in celery.sent for row in m["kwargs"]["rows"]] == [
        users[1]]
    assert summary(capsys.readouterr().out)["done before"] == "1"


def test_import_waits_for_the_workers_and_summarises(redis, celery, tmp_path, capsys):
    markers = ImportMarkers(redis)
    people = [("66800000001", new_user_id()), ("66800000002", new_user_id())]

    def as_the_worker(message: dict) -> None:
        for row in message["kwargs"]["rows"]:
            markers.record(import_task_id(CHANNEL, row["mobile"], row["line_user_id"]),
                           Outcome.REGISTERED)

    celery.on_send = as_the_worker
    path = write_csv(tmp_path / "users.csv", [[mobile, user, ""] for mobile, user in people])
    assert main(["import", str(path)]) == 0
    counts = summary(capsys.readouterr().out)
    assert (counts["enqueued"], counts["registered"], counts["failed"]) == ("2", "2", "0")


def test_import_stops_waiting_when_nothing_moves(redis, celery, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cli.importer.POLL_SECONDS", 0.05)
    path = write_csv(tmp_path / "users.csv", [["66800000001", new_user_id(), ""]])
    assert main(["import", str(path), "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert summary(out)["still running"] == "1"
    assert "is a worker consuming 'imports'?" in out


# -- backfill-followers ------------------------------------------------------------------
def followers(*user_ids, error=None):
    def follower_ids(self, channel, limit=1000):
        yield from user_ids
        if error is not None:
            raise error

    return follower_ids


def test_backfill_enqueues_each_follower_once_a_day(redis, celery, monkeypatch, capsys):
    users = [new_user_id(), new_user_id()]
    monkeypatch.setattr("core.line.client.LineApiClient.follower_ids",
                        followers(*users, "not-a-user-id"))
    assert main(["backfill-followers"]) == 0
    [batch] = celery.sent
    assert (batch["name"], batch["queue"]) == ("linecap.backfill_followers", "line-events-bulk")
    assert batch["kwargs"]["followers"]["users"] == users
    counts = summary(capsys.readouterr().out)
    assert (counts["followers"], counts["enqueued"], counts["malformed ids"]) == ("3", "2", "1")
    from core.store.history import HistoryStore

    [queued] = HistoryStore(redis).read(CHANNEL_ID, users[0])
    now = batch["kwargs"]["followers"]["timestamp"]
    assert (queued["kind"], queued["event"], queued["by"]) == \
        ("queued", backfill_event(CHANNEL_ID, users[0], now)["webhookEventId"],
         "linecap backfill-followers")

    state = StateStore(redis, 60, 60, 60)
    state.mark_event(backfill_event(CHANNEL_ID, users[0], now)["webhookEventId"], "applied")
    state.finish_event("E-earlier", "applied", CHANNEL_ID, users[1], 1_700_000_000_000,
                       "followed")
    assert main(["backfill-followers"]) == 0
    counts = summary(capsys.readouterr().out)
    assert (counts["enqueued"], counts["already synced today"],
            counts["already following"]) == ("0", "1", "1"), "nothing to call for"
    assert len(celery.sent) == 1


def test_backfill_on_an_unverified_account_is_one_line(redis, celery, monkeypatch, capsys):
    refused = ConfigurationError("LINE followers: HTTP 403 (not available for this account)")
    monkeypatch.setattr("core.line.client.LineApiClient.follower_ids", followers(error=refused))
    assert main(["backfill-followers"]) == 2
    assert capsys.readouterr().err == (
        f"linecap: LINE refused the followers list of channel {CHANNEL_ID}: LINE followers: "
        "HTTP 403 (not available for this account); only verified or premium accounts can "
        "use it\n")


# -- dlq ---------------------------------------------------------------------------------
def add_letters(redis) -> DeadLetterStore:
    store = DeadLetterStore(redis)
    store.add("EVENT-1", CHANNEL_ID, {"type": "follow", "webhookEventId": "EVENT-1"},
              "invalid_input", "POST /v2/customers: HTTP 400", attempts=1)
    store.add("import-abc", CHANNEL_ID, {"mobile": "66800000001", "line_user_id": "U" + "1" * 32},
              "identity_conflict", "x" * 200, attempts=3, task="linecap.import_user")
    return store


def test_dlq_list_shows_newest_first_with_task_and_error(redis, capsys):
    add_letters(redis)
    assert main(["dlq", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["ID", "TASK", "CHANNEL"]
    assert lines[1].startswith("import-abc") and "linecap.import_user" in lines[1]
    assert lines[1].endswith("x" * 60 + "…")
    assert lines[2].startswith("EVENT-1") and "invalid_input" in lines[2]


def test_dlq_list_json_and_limit(redis, capsys):
    add_letters(redis)
    assert main(["dlq", "list", "--json", "--limit", "1"]) == 0
    letters = json.loads(capsys.readouterr().out)
    assert [letter["event_id"] for letter in letters] == ["import-abc"]
    assert letters[0]["attempts"] == 3


def test_dlq_list_when_empty(redis, capsys):
    assert main(["dlq", "list"]) == 0
    assert capsys.readouterr().out == "no dead letters\n"


def test_dlq_show_prints_the_whole_entry(redis, capsys):
    add_letters(redis)
    assert main(["dlq", "show", "EVENT-1"]) == 0
    letter = json.loads(capsys.readouterr().out)
    assert letter["event"] == {"type": "follow", "webhookEventId": "EVENT-1"}
    assert main(["dlq", "show", "nope"]) == 1
    assert capsys.readouterr().err == "linecap: no dead letter with id nope\n"


def test_dlq_purge_needs_yes_and_then_deletes(redis, capsys):
    store = add_letters(redis)
    assert main(["dlq", "purge", "EVENT-1"]) == 2
    assert "add --yes to confirm" in capsys.readouterr().err
    assert store.count() == 2
    assert main(["dlq", "purge", "EVENT-1", "--yes"]) == 0
    assert store.ids() == ["import-abc"]
    assert main(["dlq", "purge", "--all", "--yes"]) == 0
    assert store.count() == 0 and "purged 1" in capsys.readouterr().out


def test_dlq_replay_publishes_to_the_letters_own_task_then_removes_it(redis, celery, capsys):
    store = add_letters(redis)
    assert main(["dlq", "replay", "import-abc"]) == 0
    assert celery.sent == [{"name": "linecap.import_user", "task_id": "import-abc",
                            "queue": "imports", "retry": True, "kwargs": {
                                "channel_id": CHANNEL_ID,
                                "event": {"mobile": "66800000001",
                                          "line_user_id": "U" + "1" * 32}},
                            "kwargsrepr": f"channel {CHANNEL_ID} (payload not shown)"}]
    assert store.ids() == ["EVENT-1"]
    assert main(["dlq", "replay", "--all"]) == 0
    assert (celery.sent[-1]["name"], celery.sent[-1]["queue"]) == \
        ("linecap.process_event", "line-events-bulk")
    assert store.count() == 0
    assert main(["dlq", "replay", "import-abc"]) == 1


def test_dlq_replay_keeps_the_entry_when_publishing_fails(redis, celery, capsys):
    from kombu.exceptions import OperationalError

    def broker_down(message):
        raise OperationalError("connection refused")

    celery.on_send = broker_down
    store = add_letters(redis)
    assert main(["dlq", "replay", "EVENT-1"]) == 2
    assert "could not publish to the broker" in capsys.readouterr().err
    assert store.get("EVENT-1") is not None


# -- progress ----------------------------------------------------------------------------
def test_progress_redraws_in_place_on_a_terminal(tmp_path):
    import io

    stream = io.StringIO()
    progress = Progress("importing", 4, stream=stream, interactive=True)
    for done in range(1, 5):
        progress.update(done)
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\rimporting [") and text.endswith("4/4 100%\n")
    assert text.count("\n") == 1


def test_progress_writes_lines_when_not_a_terminal():
    import io

    stream = io.StringIO()
    progress = Progress("enqueuing", 20, stream=stream, interactive=False)
    for done in range(1, 21):
        progress.update(done)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert 2 <= len(lines) <= 12 and lines[-1].endswith("20/20 100%")
