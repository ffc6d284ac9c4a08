"""An SSH target: where a board's generated code runs, how to log in, and ``RemoteError``.

A :class:`RemoteTarget` comes from a ``hardware/<board>.yaml`` entry (``access.ssh``: host,
port, user, key_env, python, workdir; capability ``edgetpu``). The private key is read from
the file named by the environment variable ``key_env`` (passphrase, if any, in
``<key_env>_PASSPHRASE``); without it the SSH agent is asked. Host keys are checked against
``$AUTOPILOT_SSH_KNOWN_HOSTS`` (default ``~/.ssh/known_hosts``) and an unknown host is refused
unless ``AUTOPILOT_SSH_ACCEPT_NEW_HOST=1``. No credential (key material, passphrase, key path)
is ever put in a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pytest_autopilot.core.errors import HarnessError
from pytest_autopilot.core.records import Category

CONNECT_TIMEOUT_S = 5.0  # TCP connect + SSH banner + auth, each


class RemoteError(HarnessError):
    """The target, not the program, failed. ``kind`` is one of :data:`KINDS`."""

    KINDS = {
        "config": "configuration error",
        "refused": "connection refused (is sshd running on the target?)",
        "unreachable": "host unreachable",
        "connect_timeout": "connect timeout",
        "host_key": "host key not trusted",
        "auth": "authentication failed",
        "protocol": "SSH protocol error",
        "dropped": "connection dropped",
        "remote_command": "remote command failed",
        "kill_failed": "processes left running on the target",
    }

    def __init__(self, kind: str, target: str, detail: str):
        self.kind = kind
        one_line = " ".join(str(detail).split())
        super().__init__(Category.HARNESS_ERROR, f"ssh target {target}: {self.KINDS[kind]}: {one_line}")


@dataclass(frozen=True)
class RemoteTarget:
    name: str
    host: str
    port: int = 22
    user: str | None = None
    key_env: str | None = None  # env var naming the private-key file; else the SSH agent
    python: str = "python3"
    workdir: str = "/tmp"
    edgetpu: bool = False
    known_hosts: str | None = None  # default: $AUTOPILOT_SSH_KNOWN_HOSTS or ~/.ssh/known_hosts
    host_keys: tuple[str, ...] = ()  # extra trusted "TYPE BASE64" host keys (a harness-run sshd)
    accept_new_host: bool = False  # unknown host keys accepted (in memory only)
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    pkey: Any = field(default=None, repr=False, compare=False)  # an in-memory key (harness-run sshd)
    # the target is this machine (a harness-run sshd): the program gets the local sandbox's launcher
    # and view (ssh/view.py); on any other target the harness cannot apply them
    local_view: bool = False

    @classmethod
    def from_board(cls, board, **overrides) -> "RemoteTarget":
        ssh = board.access.ssh if board is not None else None
        if ssh is None:
            name = getattr(board, "name", None)
            raise RemoteError("config", str(name), "the board has no access.ssh entry in its hardware file")
        values = dict(name=board.name, host=ssh.host, port=ssh.port, user=ssh.user, key_env=ssh.key_env,
                      python=ssh.python, workdir=ssh.workdir, edgetpu="edgetpu" in board.capabilities,
                      accept_new_host=os.environ.get("AUTOPILOT_SSH_ACCEPT_NEW_HOST", "") in ("1", "true", "yes"))
        values.update(overrides)
        return cls(**values)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def load_key(target: RemoteTarget):
    """The private key named by ``key_env``, or None (then the agent is used)."""
    import paramiko

    if target.pkey is not None:
        return target.pkey
    if not target.key_env or not os.environ.get(target.key_env):
        return None
    path = os.path.expanduser(os.environ[target.key_env])
    if not os.path.isfile(path):
        raise RemoteError("config", target.label, f"${target.key_env} does not name an existing private-key file")
    passphrase = os.environ.get(f"{target.key_env}_PASSPHRASE") or None
    try:
        return paramiko.PKey.from_path(path, passphrase)
    except paramiko.PasswordRequiredException:
        raise RemoteError("auth", target.label, f"the key named by ${target.key_env} is encrypted; "
                          f"set ${target.key_env}_PASSPHRASE or load it into ssh-agent") from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise RemoteError("config", target.label, f"cannot load the private key named by ${target.key_env} "
                          f"({type(exc).__name__})") from None


def credential_hint(target: RemoteTarget) -> str:
    via = f"the key file named by ${target.key_env}" if target.key_env and os.environ.get(target.key_env) \
        else "the SSH agent" + (f" (${target.key_env} is not set)" if target.key_env else "")
    return f"user {target.user or local_user()!r} with {via}"


def local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry
        return str(os.getuid())
