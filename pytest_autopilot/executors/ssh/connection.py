"""One reusable SSH connection (and SFTP session) to a target, and reading a channel's output.

One connection per target and process (so per xdist worker), reused across attempts and
re-opened when it dropped. Every failure to connect becomes a :class:`RemoteError` of a
precise kind (refused, unreachable, connect timeout, host key, auth, protocol, dropped) with a
one-line message that names the fix and never holds key material.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

from pytest_autopilot.core.util import redact
from pytest_autopilot.executors.ssh.target import RemoteError, RemoteTarget, credential_hint, load_key, local_user

COMMAND_TIMEOUT_S = 30.0  # the harness's own small remote commands (mktemp, kill, rm)
EOF_GRACE_S = 1.0  # after the exit status, how long to wait for the end of the output


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
        key = load_key(t)
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
            client.connect(t.host, port=t.port, username=t.user or local_user(), pkey=key, sock=sock,
                           allow_agent=key is None, look_for_keys=False, timeout=t.connect_timeout_s,
                           banner_timeout=t.connect_timeout_s, auth_timeout=t.connect_timeout_s,
                           channel_timeout=t.connect_timeout_s)
        except paramiko.BadHostKeyException:
            sock.close()
            raise RemoteError("host_key", t.label, "the server's host key does not match the known one "
                              "(possible man-in-the-middle, or the board was re-imaged)") from None
        except paramiko.AuthenticationException:
            sock.close()
            raise RemoteError("auth", t.label, f"the server refused {credential_hint(t)}") from None
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
                raise RemoteError("auth", t.label, f"no credential available: {credential_hint(t)}") from None
            raise RemoteError("protocol", t.label, redact(text)) from None
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
        why = f" ({type(exc).__name__}: {redact(str(exc))})" if exc is not None and str(exc) else ""
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
            out, err = drain(chan, time.monotonic() + timeout, 1 << 20)
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


def drain(chan, deadline: float, cap: int, dropped=None):
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
