import json

import pytest

from config import ConfigError, load_settings
from tests.helpers import base_env


def test_valid_environment_gives_typed_settings():
    settings = load_settings(base_env(CAPILLARY_RATE_LIMIT_RPM="250"))
    assert settings.capillary_rate_limit_rpm == 250
    assert settings.single_channel.source_account_id == "line-account-1"
    assert settings.capillary_auth.uses_oauth is False


@pytest.mark.parametrize(("drop", "named"), [
    ("REDIS_URL", "REDIS_URL"),
    ("CAPILLARY_BASE_URL", "CAPILLARY_BASE_URL"),
    ("CAPILLARY_USERNAME", "CAPILLARY_USERNAME"),
    ("CAPILLARY_PASSWORD", "CAPILLARY_PASSWORD"),
    ("LINE_CHANNELS", "LINE_CHANNELS"),
])
def test_missing_variable_is_named(drop, named):
    env = base_env()
    del env[drop]
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


@pytest.mark.parametrize(("name", "value", "named"), [
    ("REDIS_URL", "http://x", "REDIS_URL"),
    ("CAPILLARY_BASE_URL", "ftp://x", "CAPILLARY_BASE_URL"),
    ("CAPILLARY_RATE_LIMIT_RPM", "lots", "CAPILLARY_RATE_LIMIT_RPM"),
    ("CAPILLARY_RATE_LIMIT_RPM", "0", "CAPILLARY_RATE_LIMIT_RPM"),
    ("LINE_CHANNELS", "[{", "LINE_CHANNELS"),
    ("LINE_CHANNELS", "[]", "LINE_CHANNELS"),
    ("LINE_CHANNELS", json.dumps([{"name": "x"}]), "LINE_CHANNELS[0].channel_id"),
    ("LINECAP_UNKNOWN_USER_STRATEGY", "guess", "LINECAP_UNKNOWN_USER_STRATEGY"),
    ("LINECAP_VISIBILITY_TIMEOUT_SECONDS", "5", "LINECAP_VISIBILITY_TIMEOUT_SECONDS"),
    ("LINECAP_TASK_TIME_LIMIT_SECONDS", "10", "LINECAP_TASK_TIME_LIMIT_SECONDS"),
    ("LINECAP_WORKER_METRICS_PORT", "nine", "LINECAP_WORKER_METRICS_PORT"),
    ("LINECAP_WORKER_METRICS_PORT", "-1", "LINECAP_WORKER_METRICS_PORT"),
    ("LINECAP_WORKER_METRICS_PORT", "70000", "LINECAP_WORKER_METRICS_PORT"),
    ("PORT", "70000", "PORT"),
    ("LINECAP_RECONCILE_INTERVAL_SECONDS", "-5", "LINECAP_RECONCILE_INTERVAL_SECONDS"),
    ("LINECAP_RECONCILE_CHANNEL_INTERVALS", "1650000001:60", "LINECAP_RECONCILE_CHANNEL_"),
    ("LINECAP_RECONCILE_CHANNEL_INTERVALS", "1650000001=soon", "LINECAP_RECONCILE_CHANNEL_"),
    ("LINECAP_RECONCILE_CHANNEL_INTERVALS", "1650000001=9999999", "30 days"),
    ("LINECAP_RECONCILE_CHANNEL_INTERVALS", "42=60", "not configured: 42"),
    ("LINECAP_HISTORY_TTL_SECONDS", "60", "LINECAP_HISTORY_TTL_SECONDS"),
    ("LINECAP_HISTORY_MAX_ENTRIES", "0", "LINECAP_HISTORY_MAX_ENTRIES"),
    ("LINECAP_BEAT_TICK_SECONDS", "0", "LINECAP_BEAT_TICK_SECONDS"),
])
def test_bad_value_is_named(name, value, named):
    with pytest.raises(ConfigError) as info:
        load_settings(base_env(**{name: value}))
    assert named in str(info.value)


def test_reconciliation_interval_per_channel():
    second = {"name": "b", "channel_id": "1650000002", "channel_secret": "s" * 32,
              "access_token": "t", "source_account_id": "acc-b"}
    env = base_env(LINE_CHANNELS=json.dumps([json.loads(base_env()["LINE_CHANNELS"])[0],
                                             second]),
                   LINECAP_RECONCILE_INTERVAL_SECONDS="3600",
                   LINECAP_RECONCILE_CHANNEL_INTERVALS=" 1650000002=0 ")
    settings = load_settings(env)
    assert settings.reconcile_interval("1650000001") == 3600
    assert settings.reconcile_interval("1650000002") == 0
    assert load_settings(base_env()).reconcile_interval("1650000001") == 86400, "daily"


def test_errors_never_repeat_secret_values():
    env = base_env(LINE_CHANNELS='[{"name":"a","channel_id":"1","channel_secret":"s3cr3t-value",'
                                 '"access_token":"tok-value"}]')
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert "s3cr3t-value" not in str(info.value) and "tok-value" not in str(info.value)
    assert "source_account_id" in str(info.value)


@pytest.mark.parametrize(("raw", "port"), [("", 9808), ("0", 0), (" 9100 ", 9100)])
def test_worker_metrics_port(raw, port):
    settings = load_settings(base_env(LINECAP_WORKER_METRICS_PORT=raw))
    assert settings.worker_metrics_port == port


def test_single_channel_shorthand():
    env = base_env(LINE_CHANNEL_ID="42", LINE_CHANNEL_SECRET="sec", LINE_CHANNEL_ACCESS_TOKEN="t",
                   LINE_SOURCE_ACCOUNT_ID="acc")
    del env["LINE_CHANNELS"]
    settings = load_settings(env)
    assert settings.channel("42").source_account_id == "acc"
    env.pop("LINE_SOURCE_ACCOUNT_ID")
    with pytest.raises(ConfigError, match="LINE_SOURCE_ACCOUNT_ID"):
        load_settings(env)


def test_oauth_needs_both_halves():
    settings = load_settings(base_env(CAPILLARY_OAUTH_KEY="k", CAPILLARY_OAUTH_SECRET="s"))
    assert settings.capillary_auth.uses_oauth
    with pytest.raises(ConfigError, match="CAPILLARY_OAUTH_SECRET"):
        load_settings(base_env(CAPILLARY_OAUTH_KEY="k"))


def test_duplicate_channel_ids_refused():
    one = {"name": "a", "channel_id": "1", "channel_secret": "s", "access_token": "t",
           "source_account_id": "x"}
    with pytest.raises(ConfigError, match="same channel_id"):
        load_settings(base_env(LINE_CHANNELS=json.dumps([one, one])))


def test_secrets_hidden_from_repr():
    settings = load_settings(base_env())
    assert "0123456789abcdef" not in repr(settings)
    assert "sandbox-password" not in repr(settings)


def test_bad_tls_option_in_redis_url_is_named_without_the_password():
    with pytest.raises(ConfigError) as info:
        load_settings(base_env(REDIS_URL="rediss://:hunter2-pass@h:6380/0?ssl_cert_reqs=maybe"))
    assert "REDIS_URL ssl_cert_reqs" in str(info.value) and "hunter2" not in str(info.value)


def test_every_variable_the_product_reads_is_declared_once():
    """A variable read anywhere in the product is a setting (one default, in config), or one
    of the few that belong to a library or to the CLI's own start-up, named here."""
    import ast
    import dataclasses
    from pathlib import Path

    from config.settings import LocalStackSettings, Settings

    root = Path(__file__).resolve().parents[3]
    declared = {spec.metadata["env"] for cls in (Settings, LocalStackSettings)
                for spec in dataclasses.fields(cls) if "env" in spec.metadata}
    composite = {"REDIS_URL", "CAPILLARY_BASE_URL", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD",
                 "CAPILLARY_OAUTH_KEY", "CAPILLARY_OAUTH_SECRET", "LINE_CHANNELS",
                 "LINE_CHANNEL_ID", "LINE_CHANNEL_NAME", "LINE_CHANNEL_SECRET",
                 "LINE_CHANNEL_ACCESS_TOKEN", "LINE_SOURCE_ACCOUNT_ID",
                 "LINE_CHANNEL_PREVIOUS_SECRET"}
    not_ours = {"PROMETHEUS_MULTIPROC_DIR",  # prometheus_client's own
                "LINECAP_METRICS_DIR_OWNER",  # core.metrics' note to its own children
                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",  # requests' conventions
                "NO_COLOR",  # the terminal convention, for `linecap up`'s output
                "LINECAP_LOCAL_ENV_FILE"}  # which file the CLI reads before any setting
    read = set()
    for package in ("app", "workers", "tasks", "config", "core", "cli"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("get", "getenv") and node.args
                        and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str)
                        and node.args[0].value.isupper()):
                    read.add(node.args[0].value)
    assert read - declared - composite - not_ours == set()
    assert declared.isdisjoint(composite)


def test_the_worker_metrics_endpoint_listens_on_loopback_unless_asked(monkeypatch):
    import workers.signals as signals

    settings = load_settings(base_env())
    assert settings.worker_metrics_host == "127.0.0.1"
    served = []
    monkeypatch.setattr(signals, "start_http_server",
                        lambda port, addr, registry: served.append((port, addr)))
    signals.start_worker_metrics_server(settings)
    signals.start_worker_metrics_server(
        load_settings(base_env(LINECAP_WORKER_METRICS_HOST="0.0.0.0")))
    assert served == [(9808, "127.0.0.1"), (9808, "0.0.0.0")]


def test_linecap_up_keeps_the_worker_metrics_on_loopback(tmp_path):
    from cli.localstack.stack import plan_stack

    plan = plan_stack({}, tmp_path)
    [(_, _, worker_env)] = [child for child in plan.children if child[0] == "worker"]
    assert load_settings(worker_env).worker_metrics_host == "127.0.0.1"
