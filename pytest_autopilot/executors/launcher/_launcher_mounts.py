"""The launcher's mount steps, run by pid 1 of the run's namespaces before it forks the target.
Standalone like the launcher: only the standard library.

``build_view`` makes the allow-list view (what is in it: ``fs_view.py``): a tmpfs on
``view["root"]``, an empty folder of the sandbox base dir (mounts in our private namespace never
show on the host), gets at their host paths read-only binds of the allowed trees, tmpfs for
/tmp, /var/tmp and /dev/shm, a minimal /dev, the namespace's own /proc and the work dir
read-write; then it becomes the root (``pivot_root``) and the host's tree is detached.
``readonly_host`` is the fallback where the OS refuses that: the host stays visible, read-only
except the work dir and the temp dirs.
"""

import ctypes
import os
import platform
import re
import stat

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
# Mount flags that must be kept when remounting (the kernel refuses to clear locked ones).
KEEP_MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
                    "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203,
                  "s390x": 217, "i686": 217, "i386": 217, "armv7l": 218, "armv6l": 218}
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}

libc = ctypes.CDLL(None, use_errno=True)


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(s):
    return None if s is None else os.fsencode(s)


def mount(src, target, fstype, flags, data=None):
    check(libc.mount(_b(src), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), f"mount {target}")


def mounts():
    """(mount point, per-mount options) of every mount, parent mounts first."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # \040 = space
            out.append((point, fields[5].split(",")))
    return out


def _under(path, root):
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _remount_readonly(rules, errors, within="/"):
    """Make every mount under ``within`` read-only whose most specific rule (path, read_only)
    says so; writable wins ties."""
    for point, opts in mounts():
        if not _under(point, within):
            continue
        matches = [(len(p), not ro, ro) for p, ro in rules if _under(point, p)]
        if not matches or not max(matches)[2] or "ro" in opts:
            continue
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for opt in opts:
            flags |= KEEP_MOUNT_FLAGS.get(opt, 0)
        try:
            mount(None, point, None, flags)
        except OSError as exc:
            errors.append(str(exc))


def _hide(paths, prefix, errors):
    """Empty stand-ins for secrets (credential dirs/files) visible under ``prefix``."""
    hidden = []
    for path in paths:
        target = prefix + path
        try:
            if os.path.isdir(target) and not os.path.islink(target):
                mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")
            elif os.path.isfile(target) and not os.path.islink(target):
                mount("/dev/null", target, None, MS_BIND)
            else:
                continue
            hidden.append(path)
        except OSError as exc:
            errors.append(str(exc))
    return hidden


def readonly_host(cfg, report, new_proc):
    """Fallback: a read-only view of the host except the writable paths."""
    errors = report["errors"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do here propagates to the host
    if new_proc:  # a procfs of our PID namespace: host processes become invisible
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    report["private_proc"] = new_proc
    if os.path.isdir("/dev/shm"):  # private, size-bounded shared memory instead of the host's
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['shm_mb']}m,mode=1777")
    # Every rule path becomes its own mount (shallow first, recursive so deeper mounts are
    # carried along), so it can get its own read-only flag below.
    rules = [(p, True) for p in cfg["readonly"]] + [(p, False) for p in cfg["writable"]]
    rules = [(os.path.realpath(p), ro) for p, ro in rules if os.path.lexists(p)]
    points = {p for p, _ in mounts()}
    for path, _ in sorted(set(rules), key=lambda r: r[0].count("/")):
        if path not in points:
            try:
                mount(path, path, None, MS_BIND | MS_REC)
                points.add(path)
            except OSError as exc:
                errors.append(str(exc))
    report["hidden_paths"] = _hide(cfg["hidden"], "", errors)
    for root, _dirs, files in os.walk("/dev"):  # raw block devices behind empty stand-ins
        for name in files:
            path = os.path.join(root, name)
            try:
                if stat.S_ISBLK(os.lstat(path).st_mode):
                    mount("/dev/null", path, None, MS_BIND)
            except OSError as exc:
                errors.append(str(exc))
    _remount_readonly(rules, errors)
    # Report only what really is read-only now.
    report["readonly_paths"] = [p for p, ro in rules if ro and os.statvfs(p).f_flag & os.ST_RDONLY]
    os.chdir(cfg["workdir"])  # the old cwd still points into the (now read-only) parent mount


def _mount_point(target, like):
    """An empty folder or file at ``target`` to mount ``like`` (a host path) on."""
    if os.path.isdir(like):
        os.makedirs(target, exist_ok=True)
    elif not os.path.lexists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))


def _populate(root, cfg, errors):
    """The allow-list's mounts, parents before children; returns the remount rules."""
    view, tmpfs_opts = cfg["view"], f"size={cfg['view']['tmp_mb']}m,mode=1777"
    entries = [(p, "ro") for p in view["readonly"]] + [(p, "tmp") for p in view["tmpfs"]]
    entries += [(p, "mask") for p in view["masked"]] + [(cfg["workdir"], "rw")]
    rules = [(root, True)]
    for path, kind in sorted(entries, key=lambda e: (e[0].rstrip("/").count("/"), e[0])):
        target = root + path
        if kind == "tmp":
            os.makedirs(target, exist_ok=True)
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts)
        elif kind == "mask":
            if os.path.isdir(target):  # only where a read-only tree exposes it
                mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        elif os.path.islink(path):  # /bin -> usr/bin: the same link
            if not os.path.lexists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(os.readlink(path), target)
            continue
        elif os.path.exists(path):
            _mount_point(target, path)
            mount(path, target, None, MS_BIND | MS_REC)
        elif kind == "rw":
            raise OSError(f"work dir {path} is missing")
        else:
            continue
        rules.append((target, kind in ("ro", "mask")))
    return rules


def _make_dev(root, cfg, errors):
    """A minimal /dev: the harmless character devices, a private devpts, shm, fd links."""
    dev = root + "/dev"
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    rules = [(dev, True)]
    for name in DEV_NODES:
        if os.path.exists(f"/dev/{name}"):
            _mount_point(f"{dev}/{name}", f"/dev/{name}")
            mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
            rules.append((f"{dev}/{name}", False))
    os.makedirs(dev + "/pts")
    try:
        mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
        os.symlink("pts/ptmx", dev + "/ptmx")
        rules.append((dev + "/pts", False))
    except OSError as exc:
        errors.append(f"devpts: {exc}")
    os.makedirs(dev + "/shm")
    mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['shm_mb']}m,mode=1777")
    rules.append((dev + "/shm", False))
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    return rules


def _make_proc(root, new_proc, report):
    """The PID namespace's own procfs; the host's where that is refused (e.g. a user namespace
    whose host /proc is partly covered), which shows the host's processes."""
    proc = root + "/proc"
    os.makedirs(proc, exist_ok=True)
    report["private_proc"] = False
    if new_proc:
        try:
            mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            report["private_proc"] = True
        except OSError as exc:
            report["errors"].append(f"private /proc: {exc}")
    if not report["private_proc"]:
        mount("/proc", proc, None, MS_BIND | MS_REC)
    rules = [(proc, False)]
    for sub in ("/sys", "/sysrq-trigger"):  # kernel knobs stay read-only
        if os.path.exists(proc + sub):
            mount(proc + sub, proc + sub, None, MS_BIND | MS_REC)
            rules.append((proc + sub, True))
    return rules


def _pivot(root, workdir):
    """Make ``root`` the root and detach the host's tree (pivot_root(".", "."), then unmount
    the old root stacked on top)."""
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(root)
    check(libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    if libc.umount2(b".", MNT_DETACH) != 0:  # the host's tree would stay on top: never run like that
        os.write(2, f"sandbox launcher: cannot detach the host file system: {os.strerror(ctypes.get_errno())}\n"
                 .encode())
        os._exit(126)
    os.chdir("/")
    os.chdir(workdir)


def build_view(cfg, report, new_proc):
    """The allow-list view (see the module docstring); OSError leaves the mount tree as it was."""
    root, errors = os.path.realpath(cfg["view"]["root"]), report["errors"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do here propagates to the host
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    try:
        rules = _populate(root, cfg, errors)
        rules += _make_dev(root, cfg, errors)
        rules += _make_proc(root, new_proc, report)
        report["hidden_paths"] = _hide(cfg["hidden"], root, errors)
        _remount_readonly(rules, errors, within=root)
        report["readonly_paths"] = [p for p in cfg["view"]["readonly"]
                                    if os.path.lexists(root + p) and not os.path.islink(root + p)
                                    and os.statvfs(root + p).f_flag & os.ST_RDONLY]
        _pivot(root, cfg["workdir"])
    except BaseException:
        libc.umount2(_b(root), MNT_DETACH)  # before the pivot: the host's tree is untouched
        raise
