"""``LoopbackSSHD``: a real OpenSSH ``sshd`` on 127.0.0.1, run by the harness itself.

Own config, host key, client key, key-only auth; for tests and for the ``loopback_ssh`` board,
which has the ``simulator`` capability: the harness starts its own sshd for it (one per process,
port chosen at start; the YAML port is not used) and runs the programs with the harness's own
Python, through the local sandbox's launcher and view (``target(local_view=True)``, ``view.py``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from pytest_autopilot.core.errors import ToolchainMissing
from pytest_autopilot.core.util import die_with_parent
from pytest_autopilot.executors.fs_view import visible_executable
from pytest_autopilot.executors.ssh.target import RemoteTarget, local_user
from pytest_autopilot.executors.supervisor import proc_stats

SSHD = "/usr/sbin/sshd"
SSHD_HINT = "apt-get install -y openssh-server"


class LoopbackSSHD:
    """A real OpenSSH server on 127.0.0.1 for one user, run as a foreground child: own config,
    ed25519 host key and client key in a private temp dir, key-only auth, internal SFTP.
    Killed when :meth:`stop` is called or the harness dies (parent-death signal)."""

    def __init__(self, user: str | None = None, base_dir: Path | None = None):
        self.user = user or local_user()
        self.dir = Path(tempfile.mkdtemp(prefix="autopilot-sshd-", dir=base_dir))
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.host_key_line = ""
        self.client_key_path = self.dir / "client_ed25519"

    @staticmethod
    def available() -> str | None:
        """None when sshd can run here, else why not (with the install command)."""
        if not os.path.exists(SSHD):
            return f"OpenSSH server not installed ({SSHD} missing); install it with: {SSHD_HINT}"
        if shutil.which("ssh-keygen") is None:
            return "ssh-keygen not found; install it with: apt-get install -y openssh-client"
        return None

    def start(self, timeout_s: float = 10.0) -> "LoopbackSSHD":
        why = self.available()
        if why:
            raise ToolchainMissing(why)
        d = self.dir
        os.chmod(d, 0o700)
        for name in ("host_ed25519", "client_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"autopilot-{name}",
                            "-f", str(d / name)], check=True, capture_output=True, timeout=30)
        self.host_key_line = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
        (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
        # HOME of the sessions: an empty dir, so the login user's shell rc files (bash sources
        # ~/.bashrc for every SSH command) neither slow down nor change the harness's commands
        (d / "home").mkdir(mode=0o755, exist_ok=True)
        try:
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # sshd's privilege separation dir
        except OSError:
            pass
        last_err = ""
        for _ in range(5):  # a free port may be taken between choosing and binding it
            self.port = _free_port()
            (d / "sshd_config").write_text(_SSHD_CONFIG.format(port=self.port, dir=d, user=self.user))
            log = open(d / "sshd.log", "ab")
            try:
                self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True, preexec_fn=lambda: die_with_parent(signal.SIGTERM))
            finally:
                log.close()
            if _wait_listening(self.port, self.proc, timeout_s):
                atexit.register(self.stop)
                return self
            last_err = (d / "sshd.log").read_text(errors="replace")[-500:]
            self.stop(remove=False)
        raise RuntimeError(f"sshd did not start on 127.0.0.1: {last_err.strip()}")

    def target(self, name: str = "loopback_ssh", **overrides) -> RemoteTarget:
        import paramiko

        # python: this interpreter by the path a local_view run's allow-list shows (its real folder)
        values = dict(name=name, host="127.0.0.1", port=self.port, user=self.user, python=visible_executable(),
                      workdir=tempfile.gettempdir(), host_keys=(self.host_key_line,),
                      pkey=paramiko.Ed25519Key.from_private_key_file(str(self.client_key_path)))
        values.update(overrides)
        return RemoteTarget(**values)

    def session_pids(self) -> list[int]:
        """The per-connection sshd children (each serves one client connection)."""
        if self.proc is None:
            return []
        return [pid for pid, fields in proc_stats() if fields[1] == str(self.proc.pid)]

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(timeout=5)
            for pid in self.session_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc = None
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


_SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_ed25519
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PermitUserEnvironment no
AllowTcpForwarding no
X11Forwarding no
MaxSessions 64
MaxStartups 64:30:128
LogLevel ERROR
Subsystem sftp internal-sftp
SetEnv HOME={dir}/home
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(2)
                if s.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False
