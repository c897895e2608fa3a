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
])
def test_bad_value_is_named(name, value, named):
    with pytest.raises(ConfigError) as info:
        load_settings(base_env(**{name: value}))
    assert named in str(info.value)


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

    from config.settings import LocalStackPorts, Settings

    root = Path(__file__).resolve().parents[4]
    declared = {spec.metadata["env"] for cls in (Settings, LocalStackPorts)
                for spec in dataclasses.fields(cls) if "env" in spec.metadata}
    composite = {"REDIS_URL", "CAPILLARY_BASE_URL", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD",
                 "CAPILLARY_OAUTH_KEY", "CAPILLARY_OAUTH_SECRET", "LINE_CHANNELS",
                 "LINE_CHANNEL_ID", "LINE_CHANNEL_NAME", "LINE_CHANNEL_SECRET",
                 "LINE_CHANNEL_ACCESS_TOKEN", "LINE_SOURCE_ACCOUNT_ID"}
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
