"""Remote execution over SSH (paramiko): generated code runs on a target board, not here.

The parts, one concept each: ``target`` (a board's SSH access and credentials, and
``RemoteError``), ``connection`` (one reusable connection per target), ``remote_scripts`` (the
Python run on the target: the program's wrapper and the kill sweep), ``executor``
(``RemoteExecutor``: one attempt, upload -> run -> kill -> download -> clean up),
``loopback`` (``LoopbackSSHD``, an sshd the harness runs itself) and ``view`` (the local
sandbox's confinement for a target that is this machine). This module holds ``executor: ssh``
and ``SSHTargets``, a session's connections (kept in its shared resources).

One SSH connection per target and session process (so per xdist worker), reused across attempts
and re-opened when it dropped; closed when the session ends. Problems of the infrastructure (server down, auth, host key,
connection dropped mid-run, a target left dirty) raise :class:`RemoteError`, a ``HarnessError``
with a one-line message of the form ``ssh target NAME (HOST:PORT): KIND: detail`` and category
``harness_error``: they are never counted against the model. A hung program is the model's
failure: an ``ExecResult`` with ``timed_out=True``. No credential (key material, passphrase,
key path) is ever put in a message, a result or a log.

A board with the ``simulator`` capability and a loopback host (``loopback_ssh``) is served by a
:class:`LoopbackSSHD` the harness starts on first use (one per session process). Its programs run on this
machine, so they get the local sandbox's launcher and allow-list view (``view``); on a real board
the harness applies only rlimits, its own session and the kill sweep, and the record says
``fs_view: "remote: not applied"``.
"""

from __future__ import annotations

import os
import threading

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.executors.ssh.connection import COMMAND_TIMEOUT_S, EOF_GRACE_S, SSHConnection
from pytest_autopilot.executors.ssh.loopback import SSHD, SSHD_HINT, LoopbackSSHD
from pytest_autopilot.executors.ssh.target import CONNECT_TIMEOUT_S, RemoteError, RemoteTarget
from pytest_autopilot.executors.ssh.executor import KILL_WAIT_S, MAX_DOWNLOAD_FILES, STATUS_DIR, RemoteExecutor

__all__ = [
    "COMMAND_TIMEOUT_S", "CONNECT_TIMEOUT_S", "EOF_GRACE_S", "KILL_WAIT_S", "MAX_DOWNLOAD_FILES", "SSHD",
    "SSHD_HINT", "STATUS_DIR", "LoopbackSSHD", "RemoteError", "RemoteTarget", "RemoteExecutor", "SSHConnection",
    "SSHTargets", "is_managed_loopback", "ssh_executor",
]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_managed_loopback(board) -> bool:
    """A board the harness serves itself: capability ``simulator`` and a loopback ssh host."""
    ssh = board.access.ssh if board is not None else None
    return bool(ssh and "simulator" in board.capabilities and ssh.host in _LOOPBACK)


class SSHTargets:
    """A session's SSH toolchains (one connection per board) and the sshds it runs for loopback
    boards, all on one sandbox; ``close`` closes the connections and stops the sshds."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self._toolchains: dict[str, RemoteExecutor] = {}
        self._managed: dict[str, LoopbackSSHD] = {}
        self._lock = threading.Lock()

    def for_board(self, board) -> RemoteExecutor:
        with self._lock:
            tc = self._toolchains.get(board.name)
            if tc is None:
                if is_managed_loopback(board):
                    sshd = self._managed.get(board.name)
                    if sshd is None:
                        sshd = self._managed[board.name] = LoopbackSSHD(
                            os.environ.get("AUTOPILOT_LOOPBACK_SSH_USER")).start()
                    target = sshd.target(board.name, edgetpu="edgetpu" in board.capabilities,
                                         workdir=board.access.ssh.workdir, local_view=True)
                else:
                    target = RemoteTarget.from_board(board)
                tc = self._toolchains[board.name] = RemoteExecutor(target, self.sandbox)
            return tc

    def close(self) -> None:
        with self._lock:
            for tc in self._toolchains.values():
                tc.close()
            self._toolchains.clear()
            for sshd in self._managed.values():
                sshd.stop()
            self._managed.clear()


def ssh_executor(ctx) -> RemoteExecutor:
    """``executor: ssh``: the case's board over SSH; connections close when the session ends."""
    if ctx.case.board is None:
        raise ToolchainMissing(f"{ctx.case.path.name}: executor ssh needs a board: with an access.ssh entry")
    return ctx.shared.get("ssh-targets", lambda: SSHTargets(ctx.sandbox)).for_board(ctx.case.board)
