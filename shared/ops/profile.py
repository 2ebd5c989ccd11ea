"""The CLI's profile file: where a running platform is, so ``aqsha`` works with no flags and no exports.

``make run`` writes ``<run dir>/aqsha.env`` (``.run/aqsha.env`` by default) once its services are
ready, and removes it when it stops. It is a shell file of ``export AQSHA_...=...`` lines (``set -a;
. .run/aqsha.env`` loads it into a shell) naming the broker, the run's database, Redis, the clock
file, the run's development keyring (the operator's ``ops`` key, and the other principals' keys for
``aqsha send --as``) and the simulated gateways.

Which profile the CLI reads (docs/cli.md, "Configuration"):

1. ``--profile FILE``;
2. else ``AQSHA_PROFILE`` (a file, or ``none`` to read no profile);
3. else ``.run/aqsha.env`` in the current directory or the nearest parent that has one, else in the
   checkout the CLI is installed from.

A profile whose platform is gone (the process id in its header is not running) is skipped with a
note. Precedence, highest first: the command's flags (``--bootstrap``, ``--dsn``, ``--key`` ...),
explicit ``AQSHA_*`` variables, the profile, the built-in defaults.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from shared.ops.common import EXIT_USAGE, OpsError

#: Names a profile file (or ``none``).
PROFILE_ENV: Final = "AQSHA_PROFILE"
#: The profile's name inside a run directory.
PROFILE_NAME: Final = "aqsha.env"
#: The run directory ``make run`` uses by default, relative to where it runs.
RUN_DIR: Final = ".run"
#: ``AQSHA_PROFILE`` values that turn profiles off.
DISABLED: Final = frozenset({"none", "off", "0", "false"})
#: The simulated gateways of ``make run`` (http://host:port; ``GET /sms`` lists the SMS sent).
GATEWAYS_ENV: Final = "AQSHA_GATEWAYS_URL"
#: Variables a profile holds that are secrets: never printed.
SECRET_KEYS: Final = frozenset({"AQSHA_KAFKA_SASL_PASSWORD"})

ROOT: Final = Path(__file__).resolve().parents[2]
_PID_RE: Final = re.compile(r"^#\s*aqsha-platform-pid:\s*(\d+)\s*$")
_KEY_RE: Final = re.compile(r"^AQSHA_[A-Z0-9_]+$")


@dataclass(frozen=True, slots=True)
class Profile:
    """A profile file and its ``AQSHA_*`` values."""

    path: Path
    values: dict[str, str]
    #: The process id of the platform that wrote it (None: not written by ``make run``).
    pid: int | None = None

    @property
    def alive(self) -> bool:
        """Whether the platform that wrote it still runs (always true without a pid)."""
        return self.pid is None or pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def parse_profile(text: str, path: Path) -> Profile:
    """The values of a profile's text: ``[export ]AQSHA_NAME=value`` lines (shell quoting), comments."""
    values: dict[str, str] = {}
    pid: int | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            found = _PID_RE.match(line)
            if found:
                pid = int(found.group(1))
            continue
        line = line.removeprefix("export ").strip()
        name, sep, rest = line.partition("=")
        if not sep or not _KEY_RE.match(name):
            raise OpsError(f"{path}:{number}: expected AQSHA_NAME=value, got {raw.strip()!r}", EXIT_USAGE)
        try:
            words = shlex.split(rest, comments=False, posix=True)
        except ValueError as exc:
            raise OpsError(f"{path}:{number}: {exc}", EXIT_USAGE) from None
        values[name] = " ".join(words)
    return Profile(path, values, pid)


def read_profile(path: Path) -> Profile:
    """Read a profile file; ``OpsError`` (usage) when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OpsError(f"cannot read profile {path}: {exc.strerror}", EXIT_USAGE) from None
    return parse_profile(text, path)


def render_profile(values: Mapping[str, str], *, pid: int | None = None, what: str = "make run") -> str:
    """A profile's text: a header, then one ``export NAME=value`` line per variable (shell-quoted)."""
    lines = [
        f"# The aqsha CLI's settings for the platform {what} started "
        f"({datetime.now(UTC).isoformat(timespec='seconds')}).",
        "# aqsha reads this file by default (docs/cli.md); explicit AQSHA_* variables win over it.",
        "# In a shell: set -a; . THIS_FILE; set +a",
    ]
    if pid is not None:
        lines.append(f"# aqsha-platform-pid: {pid}")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def write_profile(path: Path, values: Mapping[str, str], *, pid: int | None = None) -> Path:
    """Write a profile atomically, readable by its owner only (it names keys and passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_profile(values, pid=pid), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def remove_profile(path: Path, *, pid: int) -> None:
    """Remove the profile if it is still the one ``pid`` wrote (another run may have replaced it)."""
    try:
        profile = read_profile(path)
    except OpsError:
        return
    if profile.pid == pid:
        path.unlink(missing_ok=True)


def find_profile(start: Path | None = None) -> Path | None:
    """``.run/aqsha.env`` in ``start`` (the current directory) or its nearest parent, else in the checkout."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / RUN_DIR / PROFILE_NAME
        if candidate.is_file():
            return candidate
    fallback = ROOT / RUN_DIR / PROFILE_NAME
    return fallback if fallback.is_file() else None


@dataclass(frozen=True, slots=True)
class Resolved:
    """The profile the CLI uses (if any), and a note for the operator when one was skipped."""

    profile: Profile | None
    note: str | None = None


def resolve_profile(explicit: Path | None, environ: Mapping[str, str], cwd: Path | None = None) -> Resolved:
    """The profile to read (module docstring); ``OpsError`` (usage) for a named one that cannot be read."""
    if explicit is not None:
        return Resolved(read_profile(explicit))
    named = environ.get(PROFILE_ENV, "").strip()
    if named.lower() in DISABLED:
        return Resolved(None)
    if named:
        return Resolved(read_profile(Path(named)))
    found = find_profile(cwd)
    if found is None:
        return Resolved(None)
    try:
        profile = read_profile(found)
    except OpsError as exc:
        return Resolved(None, f"ignoring {exc.message}")
    if not profile.alive:
        return Resolved(
            None, f"ignoring {found}: the platform that wrote it (pid {profile.pid}) is no longer running"
        )
    return Resolved(profile)


def overlay(
    profile: Profile | None, environ: Mapping[str, str], flags: Mapping[str, str | None]
) -> dict[str, tuple[str, str]]:
    """The variables to set for one command, each with where it comes from (``profile`` or ``flag``):
    the profile's values the environment lacks, then the flags' (which win over both)."""
    out = {k: (v, "profile") for k, v in (profile.values if profile else {}).items() if k not in environ}
    out.update({k: (v, "flag") for k, v in flags.items() if v is not None})
    return out


def mask_secrets(name: str, value: str | None) -> str | None:
    """A setting's value fit to print: passwords (a DSN's, a SASL one) masked."""
    if value is None:
        return None
    if name in SECRET_KEYS:
        return "***"
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", value)
