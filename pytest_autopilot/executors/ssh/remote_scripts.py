"""The Python the harness runs on the target itself: the program's wrapper and the kill sweep.

Both run with the target's Python (3.6+ on purpose: boards ship old Pythons), passed with
``-S -c``, so nothing needs installing on the board. Also the clean environment and the
rlimits the wrapper gives the program on a remote board (a target that is this machine gets
the local sandbox's instead: ``view.py``).
"""

from __future__ import annotations

# argv[1]: JSON {rlimits, env, script, status_dir, launch|None}. Runs the program in a new session
# (own process group) as a child, records its wait status and CPU time in status_dir/status, exits
# with its exit code (128 + N when killed by signal N). The status files are created afresh and
# never through a symlink: the wrapper runs outside any view the program gets.
# With ``launch`` ({argv, config, program}: a target that is this machine) the child is the harness's
# launcher, which confines itself like a local sandbox run and then execs the program; the wrapper
# passes it a status pipe and its own pid (the launcher dies with the wrapper), dies itself with
# its SSH session, writes the launcher's setup report to status_dir/setup as soon as it comes and
# records the program's own wait status (relayed by the namespace's init).
WRAPPER = r"""
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
launch = cfg.get("launch")
os.makedirs(cfg["status_dir"], exist_ok=True)
status_dir = os.open(cfg["status_dir"], os.O_RDONLY)
def put(name, text):
    try:
        os.unlink(name, dir_fd=status_dir)
    except OSError:
        pass
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=status_dir)
    with os.fdopen(fd, "w") as f:
        f.write(text)
if launch:
    import ctypes, signal
    session = os.getppid()
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the SSH session
    if os.getppid() != session:
        os._exit(137)
try:
    os.setsid()
except OSError:
    pass
put("sid", str(os.getsid(0)))
env = cfg["env"]
if "PYTHONUSERBASE" in env:
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
if launch:
    report_r, report_w = os.pipe()
me = os.getpid()
pid = os.fork()
if pid == 0:
    try:
        argv = [sys.executable, cfg["script"]]
        if launch:
            os.close(report_r)
            os.set_inheritable(report_w, True)
            config = dict(launch["config"], status_fd=report_w, parent_pid=me)
            argv = launch["argv"] + [json.dumps(config), "--"] + launch["program"]
        os.execve(argv[0], argv, env)
    finally:
        os._exit(127)
record = {"rlimits": applied, "python": sys.version.split()[0]}
if launch:  # EOF once the launcher and its init have closed it: when the program's main process is gone
    os.close(report_w)
    pending = b""
    while True:
        chunk = os.read(report_r, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                item = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                continue
            if isinstance(item, dict) and "setup" in item:  # at once: a program that then hangs has it too
                put("setup", json.dumps(item["setup"]))
            elif isinstance(item, dict):
                record.update(item)
while True:
    try:
        _, status, usage = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
exit_status = record.pop("exit_status", None)
if exit_status is not None:  # the program's own status, relayed by the namespace's init
    status = exit_status
record.update(status=status, cpu_s=usage.ru_utime + usage.ru_stime)
put("status", json.dumps(record))
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
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
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
