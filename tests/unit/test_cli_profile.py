"""The CLI's profile and the simulated platform it points at: no infrastructure.

``make run`` writes ``<run dir>/aqsha.env``; the CLI reads it (flags > explicit AQSHA_* variables >
the profile > defaults), signs as ``ops`` or ``--as`` a keyring principal, moves the simulated
clock, reads the simulated SMS gateway; and the platform hands the caller's AQSHA_* settings to
its services, its own endpoints winning.
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from shared.clock import ALMATY, OffsetFileClock
from shared.ops import platform
from shared.ops.cli import app, hoist_global_options, main
from shared.ops.common import OpsError
from shared.ops.kafka_tools import operator_signer
from shared.ops.profile import (
    PROFILE_ENV,
    mask_secrets,
    overlay,
    parse_profile,
    read_profile,
    remove_profile,
    render_profile,
    resolve_profile,
    write_profile,
)
from shared.ops.sim_tools import last_code, parse_duration, parse_moment, parse_since
from shared.settings import TrustSettings
from tests.support.trust import keyring

pytestmark = pytest.mark.unit


def _invoke(args: list[str], env: dict[str, str | None] | None = None, cwd: Path | None = None) -> Result:
    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, args, env=env)
    finally:
        os.chdir(old)


# ---------------------------------------------------------------------------------------- the file
def test_a_profile_round_trips_through_shell_quoting(tmp_path: Path) -> None:
    values = {
        "AQSHA_KAFKA_BOOTSTRAP": "127.0.0.1:40123",
        "AQSHA_PG_DSN": "postgresql://u:p w$x@127.0.0.1:5432/aqsha_run",
        "AQSHA_CLOCK_FILE": "/tmp/a dir/clock",
    }
    path = write_profile(tmp_path / ".run" / "aqsha.env", values, pid=os.getpid())
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "export AQSHA_CLOCK_FILE='/tmp/a dir/clock'" in text
    profile = read_profile(path)
    assert profile.values == values
    assert profile.pid == os.getpid()
    assert profile.alive
    assert parse_profile(render_profile(values), path).pid is None
    with pytest.raises(OpsError, match=r"aqsha.env:2: expected AQSHA_NAME=value"):
        parse_profile("# header\nPATH=/bin\n", tmp_path / "aqsha.env")
    remove_profile(path, pid=os.getpid() + 1)  # another run's: left alone
    assert path.exists()
    remove_profile(path, pid=os.getpid())
    assert not path.exists()


def test_which_profile_is_read(tmp_path: Path) -> None:
    own = write_profile(tmp_path / "run" / ".run" / "aqsha.env", {"AQSHA_PG_DSN": "a"}, pid=os.getpid())
    deep = tmp_path / "run" / "x" / "y"
    deep.mkdir(parents=True)
    # .run/aqsha.env here or in the nearest parent
    assert resolve_profile(None, {}, deep).profile is not None
    assert resolve_profile(None, {}, deep).profile.path == own  # type: ignore[union-attr]
    # AQSHA_PROFILE names one, or turns profiles off; --profile wins over both
    other = write_profile(tmp_path / "other.env", {"AQSHA_PG_DSN": "b"})
    assert resolve_profile(None, {PROFILE_ENV: str(other)}, deep).profile.values == {"AQSHA_PG_DSN": "b"}  # type: ignore[union-attr]
    assert resolve_profile(None, {PROFILE_ENV: "none"}, deep).profile is None
    assert resolve_profile(other, {PROFILE_ENV: "none"}, deep).profile.path == other  # type: ignore[union-attr]
    with pytest.raises(OpsError, match="cannot read profile"):
        resolve_profile(tmp_path / "missing.env", {}, deep)
    # a profile whose platform is gone is skipped, with a note
    dead = write_profile(tmp_path / "gone" / ".run" / "aqsha.env", {"AQSHA_PG_DSN": "c"}, pid=2**22 + 7)
    skipped = resolve_profile(None, {}, dead.parent.parent)
    assert skipped.profile is None
    assert skipped.note is not None
    assert "is no longer running" in skipped.note


def test_flags_beat_the_environment_which_beats_the_profile() -> None:
    profile = parse_profile(
        "export AQSHA_KAFKA_BOOTSTRAP=p:1\nexport AQSHA_PG_DSN=postgresql://p/db\nAQSHA_CLOCK_FILE=/c\n",
        Path("aqsha.env"),
    )
    environ = {"AQSHA_PG_DSN": "postgresql://env/db", "AQSHA_CLOCK_FILE": "/env"}
    applied = overlay(
        profile, environ, {"AQSHA_KAFKA_BOOTSTRAP": None, "AQSHA_PG_DSN": "postgresql://flag/db"}
    )
    assert applied == {
        "AQSHA_KAFKA_BOOTSTRAP": ("p:1", "profile"),  # the environment lacks it
        "AQSHA_PG_DSN": ("postgresql://flag/db", "flag"),  # the flag wins over the environment
    }  # AQSHA_CLOCK_FILE: the environment's stays
    assert mask_secrets("AQSHA_PG_DSN", "postgresql://aqsha:secret@h:1/db") == "postgresql://aqsha:***@h:1/db"
    assert mask_secrets("AQSHA_KAFKA_SASL_PASSWORD", "x") == "***"


def test_the_cli_reads_the_profile_and_says_where_each_setting_comes_from(tmp_path: Path) -> None:
    write_profile(
        tmp_path / ".run" / "aqsha.env",
        {"AQSHA_KAFKA_BOOTSTRAP": "127.0.0.1:4", "AQSHA_PG_DSN": "postgresql://x@127.0.0.1:5/run"},
        pid=os.getpid(),
    )
    env: dict[str, str | None] = {PROFILE_ENV: None, "AQSHA_KAFKA_BOOTSTRAP": None, "AQSHA_PG_DSN": None}
    before = dict(os.environ)
    shown = _invoke(["config", "--json"], env, cwd=tmp_path)
    assert shown.exit_code == 0, shown.output
    config = json.loads(shown.stdout)
    assert config["profile"] == str(tmp_path / ".run" / "aqsha.env")
    rows = {r["variable"]: r for r in config["settings"]}
    assert (rows["AQSHA_KAFKA_BOOTSTRAP"]["value"], rows["AQSHA_KAFKA_BOOTSTRAP"]["source"]) == (
        "127.0.0.1:4",
        "profile",
    )
    assert rows["AQSHA_REDIS_URL"]["source"] == "default"
    explicit = _invoke(
        ["--dsn", "postgresql://flag@h:1/f", "config", "--json"],
        {**env, "AQSHA_KAFKA_BOOTSTRAP": "10.0.0.1:9092"},
        cwd=tmp_path,
    )
    rows = {r["variable"]: r for r in json.loads(explicit.stdout)["settings"]}
    assert (rows["AQSHA_KAFKA_BOOTSTRAP"]["value"], rows["AQSHA_KAFKA_BOOTSTRAP"]["source"]) == (
        "10.0.0.1:9092",
        "environment",
    )
    assert (rows["AQSHA_PG_DSN"]["value"], rows["AQSHA_PG_DSN"]["source"]) == (
        "postgresql://flag@h:1/f",
        "flag",
    )
    assert dict(os.environ) == before  # nothing of the profile or the flags stays in the process


def test_global_options_may_follow_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert hoist_global_options(["reconcile", "--dsn", "x", "--json"]) == [
        "--dsn",
        "x",
        "reconcile",
        "--json",
    ]
    assert hoist_global_options(["tail", "t", "--bootstrap=h:1", "--", "--dsn"]) == [
        "--bootstrap=h:1",
        "tail",
        "t",
        "--",
        "--dsn",
    ]
    with pytest.raises(SystemExit) as exit_:  # usage errors are one line too
        main(["tail", "aqsha.payments.events", "--offset", "x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("aqsha: error: Invalid value for '--offset'")
    assert len(err.splitlines()) == 1


def test_the_profile_key_signs_as_ops_and_as_names_a_keyring_principal() -> None:
    keys = Path(os.environ["AQSHA_TRUST_KEYS_DIR"])
    trust = TrustSettings.model_validate(
        {
            "registry_file": os.environ["AQSHA_TRUST_REGISTRY_FILE"],
            "keys_dir": keys,
            "signing_key_file": keys / "ops.pem",  # what make run's profile sets
        }
    )
    assert operator_signer(trust).principal == "ops"
    assert operator_signer(trust, principal="ops", key_option=False).key_id == keyring().signer("ops").key_id
    for principal in ("app-gateway", "cash-network", "onboarding", "red-origination"):
        assert operator_signer(trust, principal=principal).key_id == keyring().signer(principal).key_id


# ------------------------------------------------------------------------------------- the clock
def test_clock_show_set_and_advance(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    env: dict[str, str | None] = {"AQSHA_CLOCK_FILE": str(path)}
    shown = _invoke(["clock", "show", "--json"], env)
    assert shown.exit_code == 0, shown.output
    assert abs(json.loads(shown.stdout)["offset_s"]) < 5  # no file yet: real time
    moved = _invoke(["clock", "set", "2025-11-24T19:59", "--json"], env)
    assert moved.exit_code == 0, moved.output
    state = json.loads(moved.stdout)
    assert state["business_date"] == "2025-11-24"
    assert state["after_cutoff"] is False
    assert abs(OffsetFileClock(path).now() - datetime(2025, 11, 24, 19, 59, tzinfo=ALMATY)) < timedelta(
        seconds=5
    )
    later = _invoke(["clock", "advance", "1d2m"], env)
    assert later.exit_code == 0, later.output
    assert "Tue 25.11.2025 20:01" in later.stdout
    assert "after the 20:00 cut-off" in later.stdout
    back = _invoke(["clock", "set", "2025-11-01"], env)
    assert back.exit_code == 2
    assert "pass --backwards" in back.stderr
    assert _invoke(["clock", "set", "2025-11-01", "--backwards"], env).exit_code == 0
    for args, message in (
        (["clock", "advance", "0m"], "the clock only moves forward"),
        (["clock", "advance", "soon"], "invalid duration"),
        (["clock", "set", "24.11.2025"], "invalid time '24.11.2025'"),
    ):
        bad = _invoke(args, env)
        assert bad.exit_code == 2, (args, bad.output)
        assert message in bad.stderr
    real = _invoke(["clock", "show"], {"AQSHA_CLOCK_FILE": None})
    assert real.exit_code == 2
    assert real.stderr.strip() == (
        "aqsha: error: no simulated clock: this platform runs on real time (AQSHA_CLOCK_FILE is not set; "
        "`make run` sets it in its profile)"
    )


def test_time_parsing() -> None:
    assert parse_moment("2025-11-24") == datetime(2025, 11, 24, tzinfo=ALMATY)
    assert parse_moment("2025-11-24T10:00Z") == datetime(2025, 11, 24, 10, tzinfo=UTC)
    assert parse_duration("1w2d3h4m5s") == timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_since("15m", now) == now - timedelta(minutes=15)
    assert parse_since("2025-12-31T23:00", now) == datetime(2025, 12, 31, 23, tzinfo=ALMATY)


# ------------------------------------------------------------------------------------------ SMS
def _post_sms(base: str, to: str, text: str, key: str) -> None:
    body = json.dumps({"to": to, "text": text, "event_type": "OtpRequested"}).encode()
    request = urllib.request.Request(f"{base}/sms", data=body, headers={"Idempotency-Key": key})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def test_sms_reads_the_simulated_gateway() -> None:
    gateways = platform.Gateways().start()
    try:
        _post_sms(gateways.base_url, "+77011234567", "Код 123456. Никому не сообщайте.", "e1")
        _post_sms(gateways.base_url, "+77021234568", "Код 654321.", "e2")
        _post_sms(gateways.base_url, "+77011234567", "Код 777888.", "e3")
        env: dict[str, str | None] = {"AQSHA_GATEWAYS_URL": gateways.base_url}
        listed = _invoke(["sms", "87011234567", "--json"], env)  # the same phone, written otherwise
        assert listed.exit_code == 0, listed.output
        assert [m["text"] for m in json.loads(listed.stdout)] == [
            "Код 123456. Никому не сообщайте.",
            "Код 777888.",
        ]
        code = _invoke(["sms", "+77011234567", "--code"], env)
        assert code.stdout.strip() == "777888"
        everyone = _invoke(["sms", "--limit", "2"], env)
        assert everyone.stdout.count("OtpRequested") == 2
        nothing = _invoke(["sms", "+77770000000", "--code"], env)
        assert nothing.exit_code == 1
        assert nothing.stderr.strip() == "aqsha: error: no SMS with a one-time code to +77770000000"
    finally:
        gateways.stop()
    none = _invoke(["sms"], {"AQSHA_GATEWAYS_URL": None})
    assert none.exit_code == 2
    assert "no simulated SMS gateway" in none.stderr
    assert last_code([{"text": "no code"}, {"text": "code 12345"}]) is None


# ------------------------------------------------------------------------------------- make run
def _platform(tmp_path: Path) -> platform.Platform:
    endpoints = platform.Endpoints(
        "127.0.0.1:19092", "postgresql://x@127.0.0.1:1/postgres", "redis://r:1/0", {}
    )
    plat = platform.Platform(endpoints, run_dir=tmp_path / ".run", database="aqsha_run")
    plat.dsn = "postgresql://x@127.0.0.1:1/aqsha_run"
    plat.secrets = {
        "AQSHA_TRUST_KEYS_DIR": str(tmp_path / "keys"),
        "AQSHA_TRUST_REGISTRY_FILE": str(tmp_path / "keys" / "registry.json"),
        "AQSHA_OTP_HASH_KEY": "h" * 32,
    }
    return plat


def test_make_run_passes_aqsha_settings_to_the_services_its_own_endpoints_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plat = _platform(tmp_path)
    for name, value in {
        "AQSHA_OTP_THRESHOLD_TIYN": "100000",  # a service setting: passed through
        "AQSHA_BONUS_CURRENT_START": "2025-11-01",
        "AQSHA_LOG_LEVEL": "DEBUG",
        "AQSHA_KAFKA_BOOTSTRAP": "elsewhere:9092",  # the platform's endpoints win
        "AQSHA_PG_DSN": "postgresql://admin@elsewhere/postgres",
        "AQSHA_CLOCK_FILE": "/elsewhere/clock",
        "AQSHA_SERVICE": "oops",  # one process's own: never passed
        "AQSHA_TRUST_SIGNING_KEY_FILE": "/keys/ops.pem",
        "AQSHA_GROUP": "one-group-for-all",
    }.items():
        monkeypatch.setenv(name, value)
    plat.gateways.start()
    try:
        env = plat.env()
    finally:
        plat.gateways.stop()
    assert env["AQSHA_OTP_THRESHOLD_TIYN"] == "100000"
    assert env["AQSHA_BONUS_CURRENT_START"] == "2025-11-01"
    assert env["AQSHA_LOG_LEVEL"] == "DEBUG"
    assert env["AQSHA_KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"
    assert env["AQSHA_PG_DSN"] == plat.dsn
    assert env["AQSHA_CLOCK_FILE"] == str(plat.clock_file)
    assert env["AQSHA_TRUST_KEYS_DIR"] == str(tmp_path / "keys")
    for dropped in ("AQSHA_SERVICE", "AQSHA_TRUST_SIGNING_KEY_FILE", "AQSHA_GROUP", PROFILE_ENV):
        assert dropped not in env, dropped
    assert "PATH" in env


def test_make_run_writes_the_profile_the_cli_needs(tmp_path: Path) -> None:
    plat = _platform(tmp_path)
    plat.gateways.start()
    try:
        path = plat.write_profile()
        values: dict[str, Any] = read_profile(path).values
        assert path == tmp_path / ".run" / "aqsha.env"
        assert values == {
            "AQSHA_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
            "AQSHA_PG_DSN": plat.dsn,
            "AQSHA_REDIS_URL": "redis://r:1/0",
            "AQSHA_REDIS_PREFIX": "aqsha:run:",
            "AQSHA_CLOCK_FILE": str(tmp_path / ".run" / "clock"),
            "AQSHA_TRUST_KEYS_DIR": str(tmp_path / "keys"),
            "AQSHA_TRUST_SIGNING_KEY_FILE": str(tmp_path / "keys" / "ops.pem"),
            "AQSHA_TRUST_REGISTRY_FILE": str(tmp_path / "keys" / "registry.json"),
            "AQSHA_GATEWAYS_URL": plat.gateways.base_url,
        }
        assert "AQSHA_OTP_HASH_KEY" not in path.read_text()  # the services' secrets are not the CLI's
        assert read_profile(path).pid == os.getpid()
    finally:
        plat.gateways.stop()
