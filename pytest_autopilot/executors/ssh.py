"""Remote execution over SSH (paramiko): generated code runs on a target board, not here.

A :class:`RemoteTarget` comes from a ``hardware/<board>.yaml`` entry (``access.ssh``: host,
port, user, key_env, python, workdir; capability ``edgetpu``). The private key is read from
the file named by the environment variable ``key_env`` (passphrase, if any, in
``<key_env>_PASSPHRASE``); without it the SSH agent is asked. Host keys are checked against
``$AUTOPILOT_SSH_KNOWN_HOSTS`` (default ``~/.ssh/known_hosts``) and an unknown host is refused
unless ``AUTOPILOT_SSH_ACCEPT_NEW_HOST=1``.

Per attempt, :class:`RemoteToolchain` (``execute(code, workdir, files, limits)``, the same
interface as the local toolchains) does:

1. ``mktemp -d <workdir>/autopilot-XXXXXXXXXX`` on the target;
2. SFTP upload of ``main.py`` and the case's input files;
3. the program under a small Python wrapper that puts it in a new session (its own process
   group), applies rlimits (CPU, address space, file size, no core), gives it a clean
   environment carrying a per-attempt marker, and records its wait status;
4. the wall-clock timeout enforced here: on expiry every process of the attempt is killed on
   the target -- its session, anything carrying the marker, anything whose cwd is inside the
   attempt dir -- and the kill is verified (nothing left, or a :class:`RemoteError`);
5. download of every file the program wrote (inputs it left unchanged stay behind), into the
   local work dir the oracle reads;
6. the same kill sweep (background processes the program left) and ``rm -rf`` of the dir.

One SSH connection per target and process (so per xdist worker), reused across attempts and
re-opened when it dropped. Problems of the infrastructure (server down, auth, host key,
connection dropped mid-run, a target left dirty) raise :class:`RemoteError`, a ``HarnessError``
with a one-line message of the form ``ssh target NAME (HOST:PORT): KIND: detail`` and category
``harness_error``: they are never counted against the model. A hung program is the model's
failure: an ``ExecResult`` with ``timed_out=True``. No credential (key material, passphrase,
key path) is ever put in a message, a result or a log.

:class:`LoopbackSSHD` starts a real OpenSSH ``sshd`` on 127.0.0.1 (own config, host key,
client key, key-only auth) for tests and for the ``loopback_ssh`` board, which has the
``simulator`` capability: the harness starts its own sshd for it (one per process, port chosen
at start; the YAML port is not used) and runs the programs with the harness's own Python.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import secrets
import select
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_autopilot.core.errors import HarnessError, ToolchainMissing
from pytest_autopilot.core.records import Category, ExecResult
from pytest_autopilot.core.util import lay_out
from pytest_autopilot.executors.local import SCRIPT_NAME

CONNECT_TIMEOUT_S = 5.0  # TCP connect + SSH banner + auth, each
COMMAND_TIMEOUT_S = 30.0  # the harness's own small remote commands (mktemp, kill, rm)
KILL_WAIT_S = 5.0  # how long the remote kill sweep may take to see nothing left
MAX_DOWNLOAD_FILES = 1000
EOF_GRACE_S = 1.0  # after the exit status, how long to wait for the end of the output
STATUS_DIR = ".autopilot"  # on the target, inside the attempt dir: the wrapper's status file
SSHD = "/usr/sbin/sshd"
SSHD_HINT = "apt-get install -y openssh-server"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


# --------------------------------------------------------------------------------- the target


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


def _load_key(target: RemoteTarget):
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


def _credential_hint(target: RemoteTarget) -> str:
    via = f"the key file named by ${target.key_env}" if target.key_env and os.environ.get(target.key_env) \
        else "the SSH agent" + (f" (${target.key_env} is not set)" if target.key_env else "")
    return f"user {target.user or _local_user()!r} with {via}"


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry
        return str(os.getuid())


# --------------------------------------------------------------------------------- connection


class SSHConnection:
    """One reusable SSH connection (and SFTP session) to a target; re-opened when dropped."""

    def __init__(self, target: RemoteTarget):
        self.target = target
        self._client = None
        self._sftp = None
        self.connects = 0  # how many times a connection was opened (1 = reused throughout)
        self._lock = threading.RLock()

    # -- connect
    @property
    def alive(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return bool(transport is not None and transport.is_active())

    @property
    def transport(self):
        return self._client.get_transport() if self._client is not None else None

    def ensure(self):
        with self._lock:
            if not self.alive:
                self.close()
                self._connect()
            return self._client

    def _connect(self) -> None:
        import paramiko

        t = self.target
        key = _load_key(t)
        sock = self._socket()
        client = paramiko.SSHClient()
        known = t.known_hosts or os.environ.get("AUTOPILOT_SSH_KNOWN_HOSTS") or os.path.expanduser("~/.ssh/known_hosts")
        try:
            if os.path.isfile(known):
                client.load_host_keys(known)  # load_host_keys, not system keys: never written back
        except (OSError, paramiko.SSHException, ValueError):
            pass
        hostname = t.host if t.port == 22 else f"[{t.host}]:{t.port}"
        for line in t.host_keys:
            keytype, b64 = line.split()[:2]
            client.get_host_keys().add(hostname, keytype, paramiko.PKey.from_type_string(keytype, _b64(b64)))
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy() if t.accept_new_host else paramiko.RejectPolicy())
        try:
            client.connect(t.host, port=t.port, username=t.user or _local_user(), pkey=key, sock=sock,
                           allow_agent=key is None, look_for_keys=False, timeout=t.connect_timeout_s,
                           banner_timeout=t.connect_timeout_s, auth_timeout=t.connect_timeout_s,
                           channel_timeout=t.connect_timeout_s)
        except paramiko.BadHostKeyException:
            sock.close()
            raise RemoteError("host_key", t.label, "the server's host key does not match the known one "
                              "(possible man-in-the-middle, or the board was re-imaged)") from None
        except paramiko.AuthenticationException:
            sock.close()
            raise RemoteError("auth", t.label, f"the server refused {_credential_hint(t)}") from None
        except paramiko.SSHException as exc:
            transport = client.get_transport()
            banner = getattr(transport, "remote_version", None) if transport is not None else None
            sock.close()
            text = str(exc)
            if not banner:
                text = "banner"
            if "not found in known_hosts" in text:
                raise RemoteError("host_key", t.label, f"unknown host key; add it with 'ssh-keyscan -p {t.port} "
                                  f"{t.host} >> ~/.ssh/known_hosts' (or set AUTOPILOT_SSH_ACCEPT_NEW_HOST=1)") from None
            if "banner" in text.lower():
                raise RemoteError("connect_timeout", t.label, f"no SSH banner within {t.connect_timeout_s:g} s "
                                  "(something listens there, but not an SSH server that answers)") from None
            if "No authentication methods available" in text or "No existing session" in text:
                raise RemoteError("auth", t.label, f"no credential available: {_credential_hint(t)}") from None
            raise RemoteError("protocol", t.label, _safe(text)) from None
        except (EOFError, OSError) as exc:
            sock.close()
            raise RemoteError("dropped", t.label, f"the server closed the connection during the handshake "
                              f"({type(exc).__name__})") from None
        transport = client.get_transport()
        transport.set_keepalive(5)
        self._client = client
        self.connects += 1

    def _socket(self) -> socket.socket:
        t = self.target
        try:
            sock = socket.create_connection((t.host, t.port), timeout=t.connect_timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms per round trip (Nagle)
            return sock
        except socket.gaierror as exc:
            raise RemoteError("unreachable", t.label, f"cannot resolve host {t.host!r} ({exc.strerror})") from None
        except TimeoutError:
            raise RemoteError("connect_timeout", t.label, f"no TCP connection within {t.connect_timeout_s:g} s") from None
        except ConnectionRefusedError:
            raise RemoteError("refused", t.label, f"nothing listens on port {t.port}") from None
        except OSError as exc:
            kind = "unreachable" if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "refused"
            raise RemoteError(kind, t.label, exc.strerror or type(exc).__name__) from None

    def sftp(self):
        with self._lock:
            client = self.ensure()
            channel = self._sftp.get_channel() if self._sftp is not None else None
            if channel is None or channel.closed:
                try:
                    self._sftp = client.open_sftp()
                except Exception as exc:
                    raise self.failure("SFTP session could not be opened", exc) from None
            return self._sftp

    def close(self) -> None:
        with self._lock:
            for thing in (self._sftp, self._client):
                try:
                    if thing is not None:
                        thing.close()
                except Exception:
                    pass
            self._sftp = self._client = None

    def failure(self, what: str, exc: BaseException | None = None) -> RemoteError:
        """A RemoteError for an operation that failed: 'dropped' when the connection is gone."""
        why = f" ({type(exc).__name__}: {_safe(str(exc))})" if exc is not None and str(exc) else ""
        if not self.alive:
            return RemoteError("dropped", self.target.label, f"{what}: the SSH connection was lost{why}")
        return RemoteError("remote_command", self.target.label, f"{what}{why}")

    # -- small commands
    def run(self, command: str, timeout: float = COMMAND_TIMEOUT_S, stdin: bytes | None = None) -> tuple[int, str, str]:
        """Run a harness command (not generated code): (exit status, stdout, stderr)."""
        client = self.ensure()
        try:
            chan = client.get_transport().open_session(timeout=self.target.connect_timeout_s)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = _drain(chan, time.monotonic() + timeout, 1 << 20)
            if not chan.exit_status_ready():
                raise TimeoutError(f"no exit status within {timeout:g} s")
            return chan.recv_exit_status(), out[0].decode("utf-8", "replace"), err[0].decode("utf-8", "replace")
        except RemoteError:
            raise
        except Exception as exc:
            raise self.failure(f"harness command {command.split()[0]!r} failed", exc) from None


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def _safe(text: str) -> str:
    """Exception text without anything that looks like key material."""
    from pytest_autopilot.llm.cassettes import SECRET_PATTERN

    return SECRET_PATTERN.sub("<redacted>", text)[:300]


def _drain(chan, deadline: float, cap: int, dropped=None):
    """Read stdout/stderr until EOF on both (and the exit status) or the deadline.
    Returns ([stdout bytes, truncated], [stderr bytes, truncated]); keeps reading past ``cap``
    (discarding) so the remote side never blocks on a full window."""
    out, err = [b"", False], [b"", False]
    exited_at = None
    while True:
        progressed = False
        while chan.recv_ready():
            _keep(out, chan.recv(65536), cap)
            progressed = True
        while chan.recv_stderr_ready():
            _keep(err, chan.recv_stderr(65536), cap)
            progressed = True
        if chan.exit_status_ready() and chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
            return out, err
        if chan.closed and not chan.recv_ready() and not chan.recv_stderr_ready():
            return out, err
        if chan.exit_status_ready():  # exited, but a leftover child may hold the pipes open
            exited_at = exited_at or time.monotonic()
            if time.monotonic() - exited_at > EOF_GRACE_S:
                return out, err
        if dropped is not None and dropped():
            return out, err
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return out, err
        if not progressed:
            select.select([chan], [], [], min(remaining, 0.01))  # the exit status does not wake select


def _keep(buf: list, chunk: bytes, cap: int) -> None:
    room = cap - len(buf[0])
    if len(chunk) > room:
        buf[1] = True
    if room > 0:
        buf[0] += chunk[:room]


# --------------------------------------------------------------------------------- remote helpers
# Both run with the target's Python (3.6+ on purpose: boards ship old Pythons).

# argv[1]: JSON {rlimits, env, script}. Runs the program in a new session (own process group) as
# a child, records its wait status and CPU time in .autopilot/status, exits with its exit code
# (128 + N when killed by signal N).
_WRAPPER = r"""
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
os.makedirs(".autopilot", exist_ok=True)
try:
    os.setsid()
except OSError:
    pass
with open(".autopilot/sid", "w") as f:
    f.write(str(os.getsid(0)))
env = cfg["env"]
env["PYTHONUSERBASE"] = os.path.expanduser("~/.local")
os.makedirs(env["TMPDIR"], exist_ok=True)
applied = {}
for name, value in cfg["rlimits"].items():
    res = getattr(resource, name, None)
    if res is None:
        continue
    soft, hard = value
    cur = resource.getrlimit(res)[1]
    if cur != resource.RLIM_INFINITY:
        soft, hard = min(soft, cur), min(hard, cur)
    try:
        resource.setrlimit(res, (soft, hard))
        applied[name] = soft
    except (OSError, ValueError):
        pass
pid = os.fork()
if pid == 0:
    try:
        os.execve(sys.executable, [sys.executable, cfg["script"]], env)
    finally:
        os._exit(127)
while True:
    try:
        _, status, usage = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
with open(".autopilot/status", "w") as f:
    json.dump({"status": status, "cpu_s": usage.ru_utime + usage.ru_stime, "rlimits": applied,
               "python": sys.version.split()[0]}, f)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""

# argv[1]: JSON {dir, marker, sid|None, wait_s, remove}. SIGKILLs, until none is left or the wait
# is over: the members of the attempt's session, processes carrying the attempt's marker in
# their environment, processes whose cwd is inside the attempt dir. Prints {killed, left}.
_SWEEP = r"""
import json, os, shutil, signal, sys, time
cfg = json.loads(sys.argv[1])
d, marker, sid = cfg["dir"], cfg["marker"].encode(), cfg.get("sid")
me = {os.getpid(), os.getppid()}
def members():
    found = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) in me:
            continue
        try:
            with open("/proc/%s/stat" % e, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in (b"Z", b"X"):
            continue
        if sid is not None and fields[3] == str(sid).encode():
            found.append(int(e)); continue
        try:
            with open("/proc/%s/environ" % e, "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(e)); continue
        except OSError:
            pass
        try:
            cwd = os.readlink("/proc/%s/cwd" % e)
            if cwd == d or cwd.startswith(d + "/"):
                found.append(int(e))
        except OSError:
            pass
    return found
killed = set()
deadline = time.time() + cfg["wait_s"]
while True:
    left = members()
    if not left or time.time() > deadline:
        break
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL); killed.add(pid)
        except OSError:
            pass
    time.sleep(0.02)
removed = None
if cfg.get("remove") and not left:
    shutil.rmtree(d, ignore_errors=True)
    removed = not os.path.exists(d)
print(json.dumps({"killed": len(killed), "left": len(left), "removed": removed}))
"""

_REMOTE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _remote_env(remote_dir: str, marker: str, python: str) -> dict[str, str]:
    path = _REMOTE_PATH
    if "/" in python:  # e.g. a venv's python: its scripts next to it
        path = python.rsplit("/", 1)[0] + ":" + path
    name, _, value = marker.partition("=")
    return {
        "PATH": path, "HOME": remote_dir, "TMPDIR": remote_dir + "/.tmp", "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1", name: value,
        "PYTHONUSERBASE": "",  # set by the wrapper to the login user's ~/.local (pip --user installs)
    }


def _rlimits(limits) -> dict[str, list[int]]:
    mb = 2**20
    return {
        "RLIMIT_CPU": [int(limits.cpu_s), int(limits.cpu_s) + 1],
        "RLIMIT_AS": [int(limits.memory_mb) * mb] * 2,
        "RLIMIT_FSIZE": [int(limits.file_size_mb) * mb] * 2,
        "RLIMIT_CORE": [0, 0],
    }


# --------------------------------------------------------------------------------- toolchain


class RemoteToolchain:
    """Runs a Python program on an SSH target; outputs come back into the local work dir."""

    name = "ssh"

    def __init__(self, target: RemoteTarget, sandbox, connection: SSHConnection | None = None):
        self.target = target
        self.sandbox = sandbox  # local work dirs (inputs mirrored, outputs downloaded) for the oracles
        self.connection = connection or SSHConnection(target)

    def close(self) -> None:
        self.connection.close()

    def execute(self, code: str, workdir: Path, files: dict[str, Path | bytes], limits) -> ExecResult:
        conn, t = self.connection, self.target
        phases: dict[str, float] = {}
        clock = time.monotonic()
        reconnects_before = conn.connects
        conn.ensure()
        phases["connect_s"] = time.monotonic() - clock
        lay_out(workdir, files)  # the local mirror: the oracle sees what the program saw
        (workdir / SCRIPT_NAME).write_text(code, encoding="utf-8")

        clock = time.monotonic()
        remote_dir = self._mktemp()
        marker = f"AUTOPILOT_ATTEMPT={secrets.token_hex(12)}"
        sweep_cfg = {"dir": remote_dir, "marker": marker, "sid": None, "wait_s": KILL_WAIT_S}
        try:
            uploaded = self._upload(remote_dir, workdir, [SCRIPT_NAME, *files])
            phases["upload_s"] = time.monotonic() - clock
            result = self._run(remote_dir, marker, limits, sweep_cfg, phases)
            clock = time.monotonic()
            downloaded, skipped = self._download(remote_dir, workdir, uploaded, limits, result)
            phases["download_s"] = time.monotonic() - clock
        except BaseException:
            self._cleanup_after_failure(sweep_cfg)
            raise
        clock = time.monotonic()
        sweep = self._sweep(sweep_cfg, remove=True)
        phases["cleanup_s"] = time.monotonic() - clock
        if sweep["left"]:
            raise RemoteError("kill_failed", t.label, f"{sweep['left']} process(es) of the attempt survived SIGKILL "
                              f"for {KILL_WAIT_S:g} s; the target needs attention")
        result.isolation.update({
            "downloaded": downloaded, "download_skipped": skipped,
            "leftover_killed": sweep["killed"],  # background processes the program left behind
            "remote_dir_removed": bool(sweep["removed"]),
            "reconnected": conn.connects > reconnects_before and reconnects_before > 0,
            "phases_s": {k: round(v, 4) for k, v in phases.items()},
        })
        return result

    # -- steps
    def _mktemp(self) -> str:
        base = self.target.workdir.rstrip("/") or "/"
        status, out, err = self.connection.run(f"mktemp -d {shlex.quote(base + '/autopilot-XXXXXXXXXX')}")
        path = out.strip()
        if status != 0 or not path.startswith(base.rstrip("/") + "/autopilot-"):
            raise RemoteError("remote_command", self.target.label,
                              f"mktemp -d in {base} failed (exit {status}): {_safe(err.strip())[:200]}")
        return path

    def _upload(self, remote_dir: str, workdir: Path, names: list[str]) -> dict[str, tuple[int, int]]:
        sftp = self.connection.sftp()
        made: set[str] = set()
        uploaded: dict[str, tuple[int, int]] = {}
        try:
            for rel in names:
                parts = Path(rel).parts
                for i in range(1, len(parts)):
                    sub = "/".join(parts[:i])
                    if sub not in made:
                        sftp.mkdir(f"{remote_dir}/{sub}")
                        made.add(sub)
                attrs = sftp.put(str(workdir / rel), f"{remote_dir}/{'/'.join(parts)}")
                uploaded["/".join(parts)] = (attrs.st_size, attrs.st_mtime)
        except RemoteError:
            raise
        except Exception as exc:
            raise self.connection.failure("upload failed", exc) from None
        return uploaded

    def _run(self, remote_dir: str, marker: str, limits, sweep_cfg: dict, phases: dict) -> ExecResult:
        conn, t = self.connection, self.target
        config = {"rlimits": _rlimits(limits), "env": _remote_env(remote_dir, marker, t.python), "script": SCRIPT_NAME}
        command = f"cd {shlex.quote(remote_dir)} && exec {shlex.quote(t.python)} -S -c {shlex.quote(_WRAPPER)} " \
                  f"{shlex.quote(json.dumps(config))} </dev/null"
        try:
            chan = conn.transport.open_session(timeout=t.connect_timeout_s)
            start = time.monotonic()
            chan.exec_command(command)
        except Exception as exc:
            raise conn.failure("could not start the program", exc) from None
        out, err = _drain(chan, start + limits.timeout_s, limits.output_bytes, dropped=lambda: not conn.alive)
        duration = time.monotonic() - start
        phases["run_s"] = duration
        isolation: dict[str, Any] = {
            "executor": "ssh", "host": t.address, "target": t.name, "remote_dir": remote_dir,
            "timeout_s": limits.timeout_s,
            "rlimits": {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_size_mb": limits.file_size_mb,
                        "core": 0},
            "own_session": True, "env_keys": sorted(config["env"]), "local_sandbox": False,
            "edgetpu": t.edgetpu,
        }
        if not conn.alive:
            raise RemoteError("dropped", t.label, f"the SSH connection was lost while the program ran "
                              f"(after {duration:.1f} s)")
        timed_out = not chan.exit_status_ready()
        returncode = None if timed_out else chan.recv_exit_status()
        chan.close()
        sweep_cfg["sid"] = self._read_sid(remote_dir)
        if timed_out:
            sweep = self._sweep(sweep_cfg)
            isolation.update(timeout_killed=sweep["killed"], left_running=sweep["left"],
                             kill_verified=sweep["left"] == 0)
            if sweep["left"]:
                raise RemoteError("kill_failed", t.label, f"the program timed out after {limits.timeout_s:g} s and "
                                  f"{sweep['left']} of its process(es) survived SIGKILL")
        status = self._read_status(remote_dir) if not timed_out else None
        sig = None
        if timed_out:
            sig = signal.SIGKILL
        elif returncode is not None and returncode >= 128 and status is not None \
                and os.WIFSIGNALED(status["status"]) and 128 + os.WTERMSIG(status["status"]) == returncode:
            sig = os.WTERMSIG(status["status"])
            returncode = -sig
        if status is not None:
            isolation["cpu_s_used"] = round(status.get("cpu_s", 0.0), 3)
            isolation["rlimits_applied"] = status.get("rlimits", {})
            isolation["remote_python"] = status.get("python")
        stdout, stderr = (b.decode("utf-8", "replace") for b, _ in (out, err))
        return ExecResult(returncode=returncode, stdout=stdout, stderr=stderr, duration_s=round(duration, 3),
                          timed_out=timed_out, signal=sig,
                          limit_hit=_limit_hit(limits, sig, returncode, timed_out, stderr, isolation.get("cpu_s_used")),
                          output_truncated=out[1] or err[1], isolation=isolation)

    def _read_small(self, path: str) -> bytes | None:
        try:
            with self.connection.sftp().open(path, "rb") as f:
                return f.read(4096)
        except RemoteError:
            raise
        except Exception:
            if not self.connection.alive:
                raise self.connection.failure(f"reading {path.rsplit('/', 1)[-1]}") from None
            return None

    def _read_sid(self, remote_dir: str) -> int | None:
        data = self._read_small(f"{remote_dir}/{STATUS_DIR}/sid")
        try:
            return int(data) if data else None
        except ValueError:
            return None

    def _read_status(self, remote_dir: str) -> dict | None:
        data = self._read_small(f"{remote_dir}/{STATUS_DIR}/status")
        try:
            status = json.loads(data) if data else None
        except ValueError:
            return None
        return status if isinstance(status, dict) and isinstance(status.get("status"), int) else None

    def _download(self, remote_dir: str, workdir: Path, uploaded: dict[str, tuple[int, int]], limits,
                  result: ExecResult) -> tuple[list[str], list[str]]:
        sftp = self.connection.sftp()
        per_file = int(limits.file_size_mb) * 2**20
        budget = 4 * per_file
        downloaded, skipped = [], []
        try:
            stack = [""]
            while stack:
                rel_dir = stack.pop()
                for attr in sorted(sftp.listdir_attr(f"{remote_dir}/{rel_dir}".rstrip("/")), key=lambda a: a.filename):
                    name = attr.filename
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    if name in (".", "..") or "/" in name or "\0" in name or rel in (STATUS_DIR, ".tmp"):
                        continue
                    if stat.S_ISDIR(attr.st_mode or 0):
                        stack.append(rel)
                        continue
                    if not stat.S_ISREG(attr.st_mode or 0):
                        skipped.append(f"{rel} (not a regular file)")
                        continue
                    if uploaded.get(rel) == (attr.st_size, attr.st_mtime):
                        continue  # an input the program left alone: the local mirror has it
                    if len(downloaded) >= MAX_DOWNLOAD_FILES or attr.st_size > per_file or attr.st_size > budget:
                        skipped.append(f"{rel} ({attr.st_size} bytes)")
                        continue
                    local = (workdir / rel).resolve()
                    if not local.is_relative_to(workdir.resolve()):
                        skipped.append(f"{rel} (outside the work dir)")
                        continue
                    local.parent.mkdir(parents=True, exist_ok=True)
                    if local.is_symlink() or local.is_dir():
                        skipped.append(f"{rel} (clashes with a local entry)")
                        continue
                    sftp.get(f"{remote_dir}/{rel}", str(local))
                    budget -= attr.st_size
                    downloaded.append(rel)
        except RemoteError:
            raise
        except Exception as exc:
            raise self.connection.failure("download failed", exc) from None
        return downloaded, skipped

    def _sweep(self, cfg: dict, remove: bool = False) -> dict:
        conn = self.connection
        payload = json.dumps({**cfg, "remove": remove})
        status, out, err = conn.run(f"cd / && {shlex.quote(self.target.python)} -S -c {shlex.quote(_SWEEP)} "
                                    f"{shlex.quote(payload)}", timeout=COMMAND_TIMEOUT_S)
        try:
            report = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RemoteError("remote_command", self.target.label,
                              f"the kill sweep failed (exit {status}): {_safe(err.strip())[:200]}") from None
        return report

    def _cleanup_after_failure(self, cfg: dict) -> None:
        """After an error: one reconnect attempt to kill what the attempt left and remove its dir."""
        try:
            self.connection.ensure()
            self._sweep(cfg, remove=True)
        except Exception:
            pass


def _limit_hit(limits, sig, returncode, timed_out, stderr, cpu_used) -> str | None:
    from pytest_autopilot.executors.sandbox import _FSIZE_ERR, _MEMORY_ERR

    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and not timed_out and cpu_used is not None
                                 and cpu_used >= limits.cpu_s):
        return "cpu"
    if sig == signal.SIGXFSZ:
        return "file_size"
    if returncode in (0, None) or timed_out:
        return None
    if _MEMORY_ERR.search(stderr):
        return "memory"
    if _FSIZE_ERR.search(stderr):
        return "file_size"
    return None


# --------------------------------------------------------------------------------- harness-run sshd


class LoopbackSSHD:
    """A real OpenSSH server on 127.0.0.1 for one user, run as a foreground child: own config,
    ed25519 host key and client key in a private temp dir, key-only auth, internal SFTP.
    Killed when :meth:`stop` is called or the harness dies (parent-death signal)."""

    def __init__(self, user: str | None = None, base_dir: Path | None = None):
        self.user = user or _local_user()
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
                                             start_new_session=True, preexec_fn=_die_with_parent)
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

        values = dict(name=name, host="127.0.0.1", port=self.port, user=self.user, python=sys.executable,
                      workdir=tempfile.gettempdir(), host_keys=(self.host_key_line,),
                      pkey=paramiko.Ed25519Key.from_private_key_file(str(self.client_key_path)))
        values.update(overrides)
        return RemoteTarget(**values)

    def session_pids(self) -> list[int]:
        """The per-connection sshd children (each serves one client connection)."""
        if self.proc is None:
            return []
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if fields[1] == str(self.proc.pid):
                    pids.append(int(entry))
        return pids

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


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


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


# --------------------------------------------------------------------------------- per-process registry

_TOOLCHAINS: dict[tuple, RemoteToolchain] = {}
_MANAGED: dict[str, LoopbackSSHD] = {}
_REGISTRY_LOCK = threading.Lock()


def is_managed_loopback(board) -> bool:
    """A board the harness serves itself: capability ``simulator`` and a loopback ssh host."""
    ssh = board.access.ssh if board is not None else None
    return bool(ssh and "simulator" in board.capabilities and ssh.host in _LOOPBACK)


def toolchain_for_board(board, sandbox) -> RemoteToolchain:
    """The process's RemoteToolchain for a board (one connection per board and process)."""
    with _REGISTRY_LOCK:
        key = (board.name, id(sandbox))
        tc = _TOOLCHAINS.get(key)
        if tc is None:
            if is_managed_loopback(board):
                sshd = _MANAGED.get(board.name)
                if sshd is None:
                    sshd = _MANAGED[board.name] = LoopbackSSHD(os.environ.get("AUTOPILOT_LOOPBACK_SSH_USER")).start()
                target = sshd.target(board.name, edgetpu="edgetpu" in board.capabilities,
                                     workdir=board.access.ssh.workdir)
            else:
                target = RemoteTarget.from_board(board)
            tc = _TOOLCHAINS[key] = RemoteToolchain(target, sandbox)
        return tc


def ssh_executor(ctx) -> RemoteToolchain:
    """``executor: ssh``: the case's board over SSH; connections close when the session ends."""
    if ctx.case.board is None:
        raise ToolchainMissing(f"{ctx.case.path.name}: executor ssh needs a board: with an access.ssh entry")
    ctx.shared.get("ssh-connections", lambda: None, close=lambda _: close_all())
    return toolchain_for_board(ctx.case.board, ctx.sandbox)


def close_all() -> None:
    """Close every connection and stop harness-run sshds (session end; also at exit)."""
    with _REGISTRY_LOCK:
        for tc in _TOOLCHAINS.values():
            tc.close()
        _TOOLCHAINS.clear()
        for sshd in _MANAGED.values():
            sshd.stop()
        _MANAGED.clear()


atexit.register(close_all)
