"""Fixtures starting a real OpenSSH ``sshd`` on 127.0.0.1 for the remote-execution tests.

Loaded for every test through ``pytest_plugins`` in tests/conftest.py: ask for the ``sshd`` or
``ssh_target`` fixture; ``remote_shell`` and ``skip_without_sshd`` are plain helpers. The server
runs in the foreground (``sshd -D -e -f cfg``) on a free port with its own config, ed25519
host key and client key, key-only auth and internal SFTP (``pytest_autopilot.executors.ssh.loopback.LoopbackSSHD``);
one per test session and xdist worker. Without OpenSSH the tests skip, naming the package.
"""

from __future__ import annotations

import pytest

from pytest_autopilot.executors.ssh.connection import SSHConnection
from pytest_autopilot.executors.ssh.loopback import LoopbackSSHD
from pytest_autopilot.executors.ssh.target import RemoteTarget


def skip_without_sshd() -> None:
    why = LoopbackSSHD.available()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    skip_without_sshd()
    server = LoopbackSSHD(base_dir=tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture
def ssh_target(sshd) -> RemoteTarget:
    """A target for the fixture's sshd, with a short connect timeout."""
    return sshd.target("loopback_test", connect_timeout_s=3.0)


def remote_shell(target: RemoteTarget, command: str) -> tuple[int, str, str]:
    """Run a command over a NEW connection (to check the target's state independently)."""
    conn = SSHConnection(target)
    try:
        return conn.run(command)
    finally:
        conn.close()
