"""The local stack's environment file, read by CLI commands in another terminal."""

from cli.localstack.local_env import load_local_env, write_local_env


def test_local_env_round_trip_never_overrides_set_variables(tmp_path):
    path = write_local_env({"REDIS_URL": "redis://x", "LINE_CHANNELS": "[]", "HOME": "/r"},
                           tmp_path / "local.env")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    env = {"LINE_CHANNELS": "mine"}
    assert load_local_env(env, path)
    assert env == {"LINE_CHANNELS": "mine", "REDIS_URL": "redis://x"}
    assert not load_local_env({"REDIS_URL": "set"}, path)


def test_cli_reads_the_local_env_of_a_running_stack(tmp_path, monkeypatch, capsys):
    from cli.main import main

    path = write_local_env({"REDIS_URL": "redis://127.0.0.1:1/0"}, tmp_path / "local.env")
    for name in ("REDIS_URL", "CAPILLARY_BASE_URL", "LINE_CHANNELS", "LINE_CHANNEL_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LINECAP_LOCAL_ENV_FILE", str(path))
    assert main(["channels"]) == 2
    error = capsys.readouterr().err
    assert "REDIS_URL" not in error  # read from the file; the next missing one is named
    assert "CAPILLARY_BASE_URL is not set" in error
