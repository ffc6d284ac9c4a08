"""What generated code sees of the file system: an allow-list, which the launcher binds into a
fresh tree and pivots into (``_launcher_mounts.py``). Everything is at its host path.

Visible: the work dir (read-write); private /tmp, /var/tmp and /dev/shm (tmpfs, gone with the
run); read-only the system (/usr, /bin, /sbin, /lib*, /etc), the interpreter's trees (sys.prefix,
sys.base_prefix: a venv inside the checkout is bound alone, never the checkout), the CPU
topology under /sys (numeric libraries size their thread pools from it), the Sandbox's
``readonly_paths``, the directory of the program the harness runs (argv[0] on PATH) and
absolute directories the harness passes in ``env_extra`` (e.g. arduino-cli's data dir).
Hidden even there: credential files (/etc/shadow, SSH host keys, ...), the projects' .env files
and the editable-install hooks in site-packages that would point Python at the checkout.
Never visible: the checkout and the project at cwd, the sandbox base dir (other runs' work
dirs), homes, /run and /var/run -- and with them every host Unix socket.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import site
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pytest_autopilot.executors.limits import SECRET_HOME_ENTRIES

SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
SYS_TREES = ("/sys/devices/system/cpu", "/sys/devices/system/node")
PRIVATE_TMP = ("/tmp", "/var/tmp")
ETC_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
               "/etc/ssl/private", "/etc/security/opasswd", "/etc/credstore", "/etc/credstore.encrypted",
               "/etc/wireguard", "/etc/NetworkManager/system-connections", "/etc/ppp/chap-secrets",
               "/etc/ppp/pap-secrets", "/etc/ipsec.secrets", "/etc/ssh/ssh_host_*_key")


def inside(path: str | Path, root: str | Path) -> bool:
    path, root = Path(path), Path(root)
    return path == root or root in path.parents


def _within_any(path: str, trees: Iterable[str]) -> bool:
    return any(inside(path, tree) for tree in trees)


def interpreter_trees() -> list[str]:
    """The trees the running interpreter needs: its venv (if any) and the base installation."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return sorted({os.path.realpath(p) for p in prefixes if p})


def visible_executable() -> str:
    """This interpreter by a path that exists inside the view: its folder with symlinks resolved
    (the view binds real paths), its own name kept, so a venv's ``pyvenv.cfg`` is still found
    (a worktree's ``.venv`` symlinked to another checkout's venv would otherwise vanish)."""
    return os.path.join(os.path.realpath(os.path.dirname(sys.executable)), os.path.basename(sys.executable))


def homes() -> list[str]:
    return sorted({str(Path.home()), "/root"})


def _secret_paths(roots: Sequence[Path]) -> list[str]:
    paths = [os.path.join(h, e) for h in homes() for e in SECRET_HOME_ENTRIES]
    paths += [str(root / ".env") for root in roots]
    for pattern in ETC_SECRETS:
        paths += glob.glob(pattern) if "*" in pattern else [pattern]
    return paths


@functools.lru_cache(maxsize=8)
def editable_hooks(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Files in site-packages through which Python would find a package inside ``roots``: .pth
    path lines, editable-install finders (and the .pth files that import them), egg-links."""
    mentions = re.compile("|".join(re.escape(r) + r"(?:[/'\"\s]|$)" for r in roots), re.MULTILINE)
    site_dirs = {*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    found: list[str] = []
    for directory in sorted(d for d in site_dirs if os.path.isdir(d)):
        candidates = [os.path.join(directory, n) for n in sorted(os.listdir(directory))
                      if n.endswith((".pth", ".egg-link")) or (n.startswith("__editable__") and n.endswith(".py"))]
        texts = {}
        for path in candidates:
            try:
                with open(path, errors="replace") as f:
                    texts[path] = f.read(1 << 16)
            except OSError:
                continue
        hooks = [p for p, text in texts.items() if mentions.search(text)]
        finders = [Path(p).stem for p in hooks if p.endswith(".py")]
        hooks += [p for p, text in texts.items() if p.endswith(".pth") and p not in hooks
                  and any(name in text for name in finders)]
        found += hooks
    return tuple(sorted(found))


def hidden_paths(roots: Sequence[Path]) -> list[str]:
    """Files and folders replaced by empty stand-ins wherever they would be visible."""
    paths = _secret_paths(roots) + list(editable_hooks(tuple(str(r) for r in roots)))
    return sorted(p for p in set(paths) if os.path.lexists(p))


def _program_dir(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    if not argv:
        return []
    found = argv[0] if os.sep in argv[0] else None
    if found is None:
        from shutil import which

        found = which(argv[0], path=env.get("PATH"))
    return [os.path.dirname(os.path.realpath(found))] if found and os.path.exists(found) else []


def _env_dirs(env_extra: Mapping[str, str] | None) -> list[str]:
    return [os.path.realpath(v) for v in (env_extra or {}).values()
            if os.path.isabs(v) and os.path.isdir(v)]


def readonly_view(roots: Sequence[Path], protected: Sequence[str], explicit: Sequence[str],
                  argv: Sequence[str], env: Mapping[str, str], env_extra: Mapping[str, str] | None,
                  interpreter: Sequence[str] | None = None) -> list[str]:
    """The read-only trees of the allow-list. Paths derived from the run (its program's folder,
    ``env_extra`` folders) are taken only where they expose no protected path (``protected``:
    the project roots, homes, the base dir) and lie outside the project roots."""
    trees = [p for p in SYSTEM_TREES + SYS_TREES if os.path.lexists(p)]
    trees += (interpreter_trees() if interpreter is None else list(interpreter)) + list(explicit)
    for path in _program_dir(argv, env) + _env_dirs(env_extra):
        exposes = path == "/" or any(inside(p, path) for p in protected)
        if not exposes and not _within_any(path, map(str, roots)) and not _within_any(path, trees):
            trees.append(path)
    return sorted(set(trees))


def masked_in_view(readonly: Sequence[str], protected: Sequence[str]) -> list[str]:
    """Protected folders that a read-only tree would expose (a checkout inside /usr, or an
    interpreter tree holding the checkout): they get an empty stand-in in the view."""
    return sorted({p for p in protected if any(inside(p, tree) and p != tree for tree in readonly)})
