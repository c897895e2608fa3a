import pytest

from workers.flower import flower_argv


def test_flower_refuses_to_start_without_basic_auth():
    with pytest.raises(SystemExit) as info:
        flower_argv({}, [])
    assert "FLOWER_BASIC_AUTH" in str(info.value)


def test_flower_rejects_malformed_auth():
    with pytest.raises(SystemExit, match="user:password"):
        flower_argv({"FLOWER_BASIC_AUTH": "admin"}, [])


def test_flower_passes_basic_auth_and_allows_local_mode():
    argv = flower_argv({"FLOWER_BASIC_AUTH": "ops:pw"}, ["--port=5555"])
    assert argv[-2:] == ["--port=5555", "--basic-auth=ops:pw"]
    assert "flower" in argv
    assert not any(a.startswith("--basic-auth") for a in flower_argv(
        {"LINECAP_LOCAL_MODE": "1"}, []))
