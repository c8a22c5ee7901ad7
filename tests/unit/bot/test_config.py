"""Config loading: contract keys, env overrides, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, default_config_path, load_config
from tests.support.paths import REPO

EXAMPLE = REPO / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
[wecom]
corp_id = "wx5823bf96d3bd56c7"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
"""


def test_example_config_has_contract_values() -> None:
    config = load_config(EXAMPLE, {})
    assert config.server.callback_path == "/wecom/callback"
    assert config.server.max_body_bytes == 64 * 1024
    assert config.wecom.token == "QDG6eK"
    assert config.wecom.corp_id == "wx5823bf96d3bd56c7"
    assert config.wecom.encoding_aes_key == "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    assert config.wecom.api_base == "https://qyapi.weixin.qq.com/cgi-bin/"
    assert config.storage.database_url.startswith("sqlite:///")
    assert config.storage.redis_url == ""
    assert config.review.path == "/review"
    assert config.archive.anchor_chat == ""


def test_every_example_key_is_commented() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            previous = lines[i - 1].strip()
            assert previous.startswith("#") or "=" in previous, f"key without comment: {line}"


def test_env_overrides_secrets(tmp_path: Path) -> None:
    env = {
        "WECOM_CORP_ID": "ww1436e0e65a779aee",
        "WECOM_TOKEN": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
        "WECOM_AES_KEY": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
        "WECOM_AGENT_ID": "1000002",
        "WECOM_SECRET": "s3cr3t",
        "WECOM_API_BASE": "http://127.0.0.1:9999/cgi-bin/",
        "DATABASE_URL": "postgresql://u@h/db",
        "REDIS_URL": "redis://127.0.0.1:6379/3",
    }
    config = load_config(write(tmp_path, MINIMAL), env)
    assert config.wecom.corp_id == "ww1436e0e65a779aee"
    assert config.wecom.token == env["WECOM_TOKEN"]
    assert config.wecom.encoding_aes_key == env["WECOM_AES_KEY"]
    assert config.wecom.agent_id == "1000002"
    assert config.wecom.secret == "s3cr3t"
    assert config.wecom.api_base == env["WECOM_API_BASE"]
    assert config.storage.database_url == "postgresql://u@h/db"
    assert config.storage.redis_url == "redis://127.0.0.1:6379/3"


def test_secrets_not_in_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + 'secret = "topsecret"\n'), {})
    text = repr(config)
    assert "topsecret" not in text
    assert "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C" not in text
    assert "QDG6eK" not in text


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MINIMAL.replace("B2C", "B2"), "[wecom].encoding_aes_key"),
        (MINIMAL.replace('corp_id = "wx5823bf96d3bd56c7"', ""), "[wecom].corp_id"),
        (MINIMAL.replace('token = "QDG6eK"', 'token = ""'), "[wecom].token"),
        (MINIMAL + "[server]\nport = 0\n", "[server].port"),
        (MINIMAL + '[server]\nport = "80"\n', "[server].port"),
        (MINIMAL + "[server]\nworkers = 3\n", "[server].workers"),
        (MINIMAL + '[server]\ncallback_path = "wecom"\n', "[server].callback_path"),
        (MINIMAL + '[storage]\ndatabase_url = "mysql://x"\n', "[storage].database_url"),
        (MINIMAL + "[server]\nbogus = 1\n", "[server].bogus"),
        (MINIMAL + "[nonsense]\n", "[nonsense]"),
        (MINIMAL + "[rules]\npaths = 3\n", "[rules].paths"),
        (MINIMAL + '[archive]\nanchor_chat = "chat-1"\n', "[archive].anchor_chat"),
        (MINIMAL + f'[archive]\nanchor_chat = "{"c" * 33}"\n', "[archive].anchor_chat"),
        (MINIMAL + "[archive]\nanchor_chat = 12\n", "[archive].anchor_chat"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), {})
    assert key in str(info.value)


def test_several_workers_with_redis_ok(tmp_path: Path) -> None:
    text = MINIMAL + '[server]\nworkers = 3\n[storage]\nredis_url = "redis://127.0.0.1:6379/0"\n'
    assert load_config(write(tmp_path, text), {}).server.workers == 3


def test_anchor_chat_is_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + '[archive]\nanchor_chat = "wrAnchor01"\n'), {})
    assert config.archive.anchor_chat == "wrAnchor01"


def test_agent_id_as_number(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "agent_id = 1000002\n"), {})
    assert config.wecom.agent_id == "1000002"


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\n"), {})


def test_cli_overrides_are_validated(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), {})
    assert config.with_overrides(port=9000, host=None).server.port == 9000
    with pytest.raises(ConfigError, match=r"\[server\].workers"):
        config.with_overrides(workers=2)


def test_default_config_path(tmp_path: Path) -> None:
    assert default_config_path(tmp_path).name == "config.example.toml"
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    assert default_config_path(tmp_path).name == "config.toml"


# -- where a relative SQLite file lives ----------------------------------------------------------


def test_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter
    conf = tmp_path / "etc"
    conf.mkdir()
    written = MINIMAL + '[storage]\ndatabase_url = "sqlite:///data/sentinel.db?timeout=3"\n'
    config = load_config(write(conf, written), {})
    assert config.storage.database_url == f"sqlite:///{conf / 'data' / 'sentinel.db'}?timeout=3"
    # The default, with no [storage] at all, is beside the file too.
    default = load_config(write(conf, MINIMAL), {})
    assert default.storage.database_url == f"sqlite:///{conf / 'data' / 'sentinel.db'}"
    # ../ is resolved; absolute paths, in-memory and PostgreSQL URLs are left as written.
    up = load_config(write(conf, MINIMAL + '[storage]\ndatabase_url = "sqlite:///../x.db"\n'), {})
    assert up.storage.database_url == f"sqlite:///{tmp_path / 'x.db'}"
    for url in (f"sqlite:///{tmp_path / 'abs.db'}", "postgresql://u@h/db", "sqlite://"):
        given = MINIMAL + f'[storage]\ndatabase_url = "{url}"\n'
        assert load_config(write(conf, given), {}).storage.database_url == url
    # A relative path from the environment is the working directory's, as anywhere in a shell.
    from_env = load_config(write(conf, MINIMAL), {"DATABASE_URL": "sqlite:///run/s.db"})
    assert from_env.storage.database_url == f"sqlite:///{elsewhere / 'run' / 's.db'}"
    assert not (elsewhere / "data").exists() and not (conf / "data").exists()  # nothing made


def test_only_the_sqlite_files_own_folder_may_be_missing(tmp_path: Path) -> None:
    typo = MINIMAL + '[storage]\ndatabase_url = "sqlite:///dtaa/nested/sentinel.db"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, typo), {})
    message = str(info.value)
    assert message.startswith("[storage].database_url:")
    assert f"{tmp_path / 'dtaa'} does not exist" in message
    assert not (tmp_path / "dtaa").exists()


# -- [sandbox] and [metrics] --------------------------------------------------------------------


def test_sandbox_and_metrics_defaults_are_closed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), {})
    assert config.sandbox.enabled is False and config.sandbox.allow_remote is False
    assert config.metrics.allow == ("127.0.0.0/8", "::1")
    assert config.metrics.bearer_token == ""
    example = load_config(EXAMPLE, {})
    assert example.sandbox.enabled is True and example.sandbox.allow_remote is False
    assert example.metrics == config.metrics


def test_metrics_token_from_the_environment_is_never_shown(tmp_path: Path) -> None:
    token = "prom-scrape-token-0123456789"
    config = load_config(write(tmp_path, MINIMAL), {"SENTINEL_METRICS_TOKEN": token})
    assert config.metrics.bearer_token == token
    assert token not in repr(config)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), {"SENTINEL_METRICS_TOKEN": "short token"})
    assert "[metrics].bearer_token" in str(info.value) and "short token" not in str(info.value)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('[sandbox]\nenabled = "yes"\n', "[sandbox].enabled"),
        ("[sandbox]\nallow_remote = 1\n", "[sandbox].allow_remote"),
        ("[sandbox]\nbogus = true\n", "[sandbox].bogus"),
        ('[metrics]\nallow = ["localhost"]\n', "[metrics].allow"),
        ('[metrics]\nallow = ["10.0.0.1/8"]\n', "[metrics].allow"),
        ('[metrics]\nallow = "127.0.0.1"\n', "[metrics].allow"),
        ('[metrics]\nbearer_token = "tooshort"\n', "[metrics].bearer_token"),
        ('[metrics]\nbearer_token = "has a space in it, 12345"\n', "[metrics].bearer_token"),
    ],
)
def test_bad_sandbox_or_metrics_key_is_named(tmp_path: Path, section: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + section), {})
    assert str(info.value).startswith(f"{key}:")


def test_metrics_allow_takes_addresses_and_networks(tmp_path: Path) -> None:
    text = MINIMAL + '[metrics]\nallow = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]\n'
    assert load_config(write(tmp_path, text), {}).metrics.allow == (
        "127.0.0.1",
        "10.0.0.0/8",
        "fd00::/8",
    )
    assert load_config(write(tmp_path, MINIMAL + "[metrics]\nallow = []\n"), {}).metrics.allow == ()
