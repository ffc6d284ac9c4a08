"""The launcher's confinement steps, for a cold run (``_launcher.py``) and a warm child
(``_launcher_serve.py``) alike. Standalone like the launcher: only the standard library.

Setup steps that the OS may refuse (namespaces, mounts, capabilities) are best effort; what was
actually applied is reported as one JSON line on ``status_fd`` just before the code runs.
Failing rlimits are fatal (exit 126): every run must at least have those.

Process layout with a PID namespace (normal case as root)::

    launcher (harness's pid ns) -> init (pid 1, reaps orphans) -> target (pid 2, execs argv)

When pid 1 exits the kernel kills everything left in the namespace, so stray background
children cannot outlive the run; pid 1 dies with the launcher, and a cold launcher with the
harness (PR_SET_PDEATHSIG). init reports the target's raw wait status on ``status_fd`` because
pid 1 cannot re-raise a fatal signal on itself. The mounts (the allow-list view, or the
read-only host where the OS refuses it) are in ``_launcher_mounts.py``.
"""

import ctypes
import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import sys

if __package__:  # imported as a module of pytest_autopilot (the harness's side, tests)
    from ._launcher_mounts import build_view, check, libc, readonly_host
else:  # run by path in the sandbox: _launcher.py put this folder on sys.path
    from _launcher_mounts import build_view, check, libc, readonly_host

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 1, 24, 38, 47, 4
# Capabilities generated code keeps (root stays "root" for ordinary file work): CHOWN,
# DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, NET_BIND_SERVICE. Everything else goes,
# notably SYS_ADMIN (mount, setns: undoing the confinement), SYS_RESOURCE (raising rlimits),
# SYS_PTRACE, DAC_READ_SEARCH (open_by_handle_at), NET_ADMIN, SYS_MODULE, SYS_RAWIO, MKNOD.
KEEP_CAPS = {0, 1, 3, 4, 5, 6, 7, 10}
SIOCSIFFLAGS, IFF_UP_LOOPBACK_RUNNING = 0x8914, 0x1 | 0x8 | 0x40


def unshare(flags, what, report):
    try:
        check(libc.unshare(ctypes.c_int(flags)), f"unshare {what}")
        return True
    except OSError as exc:
        report["errors"].append(str(exc))
        return False


def die_with_parent(parent_alive):
    """SIGKILL when our parent dies; exit now if it already has (``parent_alive()`` is False)."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not parent_alive():
        os._exit(128 + signal.SIGKILL)


def enter_user_namespace(report):
    """Non-root only: a user namespace grants the capabilities needed for the others."""
    uid, gid = os.getuid(), os.getgid()
    if not unshare(CLONE_NEWUSER, "user", report):
        return False
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    return True


def loopback_up():
    """A fresh network namespace has only a down ``lo``; bring it up so local sockets work."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", IFF_UP_LOOPBACK_RUNNING))


def setup_mounts(cfg, report, new_proc):
    """The allow-list view; where the OS refuses it, the read-only host (and why, in the report)."""
    try:
        build_view(cfg, report, new_proc)
        report["fs_view"] = "allow-list"
        return
    except OSError as exc:
        report["fs_view_reason"] = f"allow-list view refused: {exc}"
    readonly_host(cfg, report, new_proc)
    report["fs_view"] = "read-only host"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities():
    """Shrink the bounding set: a root process gets exactly that set at execve."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        if cap not in KEEP_CAPS:
            check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)  # EINVAL on old kernels: nothing to clear
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3
    check(libc.capget(ctypes.byref(header), data), "capget")
    for i in range(2):  # inheritable caps would survive execve: clear them, keep only KEEP_CAPS
        mask = sum(1 << (c - 32 * i) for c in KEEP_CAPS if 32 * i <= c < 32 * (i + 1))
        data[i].effective &= mask
        data[i].permitted &= mask
        data[i].inheritable = 0
    check(libc.capset(ctypes.byref(header), data), "capset")


def finish_setup(cfg, report, for_exec=True):
    """Last confinement steps of the target process: rlimits, capabilities, no_new_privs, report.

    ``for_exec`` restores default dispositions of the signals Python ignores (they would survive
    ``exec``); a warm child keeps running as Python, so it keeps Python's own dispositions.
    """
    status_fd = cfg["status_fd"]
    try:
        for name, (soft, hard) in cfg["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"sandbox launcher: cannot set resource limits: {exc}\n")
        sys.stderr.flush()
        os._exit(126)
    try:
        drop_capabilities()
        report["capabilities_dropped"] = True
    except OSError as exc:
        report["errors"].append(str(exc))
    report["no_new_privs"] = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    if for_exec:  # Python ignores SIGPIPE/SIGXFSZ and ignored signals survive exec: restore defaults.
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
    report["errors"] = report["errors"][:20]  # the status pipe must never fill up and block us
    os.write(status_fd, (json.dumps({"setup": report}) + "\n").encode())
    os.close(status_fd)


def exec_target(argv, cfg, report):
    finish_setup(cfg, report)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"sandbox: cannot execute {argv[0]!r}: {exc}\n")
        os._exit(127)


def relay_status(status):
    """Terminate like the child did: same exit code, or the same fatal signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def run_init(target, status_fd):
    """pid 1 of the namespace: reap every orphan until the target exits, then report it."""
    # Namespace members can only send pid 1 signals it handles; Python handles SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = None
    while status is None:
        try:
            pid, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == target:
            status = st
    os.write(status_fd, (json.dumps({"exit_status": status}) + "\n").encode())
    # pid 1 cannot kill itself with a signal: exit 128+sig; the harness uses exit_status.
    os._exit(0 if status is None else (128 + os.WTERMSIG(status) if os.WIFSIGNALED(status)
                                       else os.waitstatus_to_exitcode(status)))


def new_report():
    return {"errors": [], "pids_cgroup": False, "memory_cgroup": False, "died_with_parent": False,
            "user_namespace": False, "network_namespace": False, "mount_namespace": False,
            "ipc_namespace": False, "pid_namespace": False, "fs_view": "host", "fs_view_reason": None,
            "readonly_paths": [], "hidden_paths": [], "capabilities_dropped": False}


def join_cgroups(cgroups, report):
    """Join the run's cgroup(s) before any fork, so every descendant is counted and killable."""
    for controller, path in cgroups.items():
        if not path:
            continue
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            report[f"{controller}_cgroup"] = True
        except OSError as exc:
            report["errors"].append(f"join {controller} cgroup: {exc}")


def start_init(cfg):
    """Fork pid 1 of the new PID namespace; the caller stays its relay and never returns.

    pid 1 dies with the relay (and the kernel then kills the namespace): PDEATHSIG, checked
    through a pipe only the relay holds, as pid 1 cannot ask for its parent's pid.
    """
    relay_r, relay_w = os.pipe()
    child = os.fork()
    if child:
        os.close(relay_r)
        os.close(cfg["status_fd"])
        while True:
            try:
                relay_status(os.waitpid(child, 0)[1])
            except InterruptedError:
                continue
    os.close(relay_w)
    die_with_parent(lambda: not select.select([relay_r], [], [], 0)[0])  # readable = EOF = relay gone
    os.close(relay_r)


def confine(cfg, report):
    """Every isolation step before the final ones; returns in the target process.

    Must run in a single-threaded process (unshare of the mount namespace and the forks below
    require it). With a PID namespace the calling process becomes the relay (it never returns:
    it exits like the target), its child pid 1 of the namespace and the grandchild the target.
    A cold launcher (``parent_pid`` set) dies with the harness; a warm child outlives its fork
    server on purpose (its attempt keeps running, see warm.py).
    """
    parent = cfg.get("parent_pid")
    if parent:
        die_with_parent(lambda: os.getppid() == parent)
        report["died_with_parent"] = True
    join_cgroups(cfg["cgroups"], report)
    if os.geteuid() != 0:
        try:
            report["user_namespace"] = enter_user_namespace(report)
        except OSError as exc:
            report["errors"].append(f"user namespace: {exc}")
        if parent:  # new credentials cleared the parent-death signal
            die_with_parent(lambda: os.getppid() == parent)
    if not cfg["network"]:
        report["network_namespace"] = unshare(CLONE_NEWNET, "net", report)
    report["mount_namespace"] = unshare(CLONE_NEWNS, "mount", report)
    report["ipc_namespace"] = unshare(CLONE_NEWIPC, "ipc", report)
    report["pid_namespace"] = unshare(CLONE_NEWPID, "pid", report)
    if report["pid_namespace"]:
        start_init(cfg)
    if report["network_namespace"]:
        try:
            loopback_up()
            report["loopback_up"] = True
        except OSError as exc:
            report["errors"].append(f"loopback: {exc}")
    if report["mount_namespace"]:
        try:
            setup_mounts(cfg, report, new_proc=report["pid_namespace"])
        except OSError as exc:
            report["errors"].append(f"mounts: {exc}")
            report["fs_view_reason"] = f"{report['fs_view_reason'] or ''} read-only host refused: {exc}".strip()
    else:
        report["fs_view_reason"] = "no mount namespace"
    if report["pid_namespace"]:
        target = os.fork()
        if target:
            run_init(target, cfg["status_fd"])
