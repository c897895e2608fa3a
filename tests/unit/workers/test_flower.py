import pytest

from config import ConfigError
from tests.helpers import make_settings
from workers.flower import flower_argv


def test_flower_refuses_to_start_without_basic_auth():
    with pytest.raises(SystemExit) as info:
        flower_argv(make_settings(), [])
    assert "FLOWER_BASIC_AUTH" in str(info.value)


def test_flower_rejects_malformed_auth():
    with pytest.raises(ConfigError, match="user:password"):
        make_settings(FLOWER_BASIC_AUTH="admin")


def test_flower_passes_basic_auth_and_allows_local_mode():
    argv = flower_argv(make_settings(FLOWER_BASIC_AUTH="ops:pw"), ["--port=5555"])
    assert argv[-2:] == ["--port=5555", "--basic-auth=ops:pw"]
    assert "flower" in argv
    assert not any(a.startswith("--basic-auth") for a in flower_argv(
        make_settings(LINECAP_LOCAL_MODE="1"), []))


def test_the_flower_password_is_not_in_the_settings_repr():
    assert "s3cret-pw" not in repr(make_settings(FLOWER_BASIC_AUTH="ops:s3cret-pw"))
