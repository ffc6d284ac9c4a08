"""The Python the harness runs on the target itself: the program's wrapper and the kill sweep.

Both run with the target's Python (3.6+ on purpose: boards ship old Pythons), passed with
``-S -c``, so nothing needs installing on the board. Also the clean environment and the
rlimits the wrapper gives the program.
"""

from __future__ import annotations

# argv[1]: JSON {rlimits, env, script}. Runs the program in a new session (own process group) as
# a child, records its wait status and CPU time in .autopilot/status, exits with its exit code
# (128 + N when killed by signal N).
WRAPPER = r"""
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
SWEEP = r"""
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


def remote_env(remote_dir: str, marker: str, python: str) -> dict[str, str]:
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


def remote_rlimits(limits) -> dict[str, list[int]]:
    mb = 2**20
    return {
        "RLIMIT_CPU": [int(limits.cpu_s), int(limits.cpu_s) + 1],
        "RLIMIT_AS": [int(limits.memory_mb) * mb] * 2,
        "RLIMIT_FSIZE": [int(limits.file_size_mb) * mb] * 2,
        "RLIMIT_CORE": [0, 0],
    }
