"""Warm fork server, run by ``warm.WarmPythonExecutor`` as::

    python -E -s _launcher.py --serve '{"socket": path, "preload": [...], "restarts": n, "ready_fd": fd}'

It imports the preload modules once, listens on the Unix socket ``path`` (one server serves every
harness process of a session on the machine, see ``warm_shared.py``), writes its ready message to
``ready_fd`` and never runs anything else (no TensorFlow op: that starts thread pools, and a fork
only copies the calling thread). For every request it forks a child that confines itself with
the same functions as the cold launcher (``_launcher_confine``) and then runs the script
in-process (``_launcher_child``) instead of exec'ing a new interpreter. See warm.py for the design and the fork-safety
evidence. Standalone like the launcher: only the standard library and its own siblings.
"""

import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import time

if __package__:  # imported as a module of pytest_autopilot (the harness's side, tests)
    from ._launcher_child import child_failed, enter_child
    from ._launcher_protocol import MAX_REQUEST
else:  # run by path in the sandbox: _launcher.py put this folder on sys.path
    from _launcher_child import child_failed, enter_child
    from _launcher_protocol import MAX_REQUEST

START_GRACE_S = 60.0  # the starter connects right after the ready message; this covers its death


def thread_count():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def _send(sock, obj):
    sock.send(json.dumps(obj).encode())


def _reap_child(pid, wait_s):
    """wait4 with a deadline: (raw status, cpu seconds) or (None, None) if it has not exited."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            done, status, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            return None, None
        if done:
            return status, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            return None, None
        time.sleep(0.005)


def serve(cfg):
    """The server: preload, listen on ``cfg["socket"]``, then serve. Returns only in a forked
    child, confined and ready to run the script."""
    import importlib

    ready = {"pid": os.getpid(), "preloaded": {}, "errors": {}, "restarts": cfg["restarts"], "dir": os.getcwd()}
    for name in cfg["preload"]:
        started = time.monotonic()
        try:
            importlib.import_module(name)
            ready["preloaded"][name] = round(time.monotonic() - started, 3)
        except BaseException as exc:  # reported; the harness decides what a failed preload means
            ready["errors"][name] = f"{type(exc).__name__}: {exc}"
    gc.collect()
    gc.freeze()  # children's collections skip the preloaded heap: it is never copied on write
    ready["threads"] = thread_count()
    sys.stdout.flush()
    sys.stderr.flush()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(cfg["socket"])
    listener.listen(64)
    listener.setblocking(False)
    bound = os.stat(cfg["socket"]).st_ino
    os.write(cfg["ready_fd"], json.dumps(ready).encode())
    os.close(cfg["ready_fd"])
    job = _serve_clients(listener, ready)
    if job is not None:
        return job  # in a forked child
    try:
        if os.stat(cfg["socket"]).st_ino == bound:  # never a newer server's socket
            os.unlink(cfg["socket"])
    except OSError:
        pass
    os._exit(0)  # no interpreter teardown of the preload: nothing is left to flush


def _serve_clients(listener, ready):
    """Requests from every harness process that connected (the xdist workers of a session), one
    at a time: the server stays single-threaded, as it must to fork. A reap whose child has not
    exited yet is answered later, so one client's wait never stalls the others. A client that
    disconnects (closed, or died) has its children killed; when the last one has gone (and the
    linger it asked for in its "bye" is over), or none came within ``START_GRACE_S``, it returns
    None (the server then exits)."""
    clients, abandoned = {}, set()  # socket -> {"children": pids, "reap": (pid, deadline) or None}
    idle = {"until": time.monotonic() + START_GRACE_S}
    while True:
        if not clients and time.monotonic() > idle["until"]:
            return None
        pending = any(c["reap"] for c in clients.values())
        timeout = 0.005 if pending else None if clients else max(0.0, idle["until"] - time.monotonic())
        try:
            readable = select.select([listener, *clients], [], [], timeout)[0]
        except InterruptedError:
            continue
        for sock in readable:
            if sock is listener:
                _accept(listener, clients, ready)
            elif sock in clients:
                job = _handle(sock, clients, abandoned, listener, ready, idle)
                if job is not None:
                    return job  # in the forked child
        if readable and not clients:
            _accept(listener, clients, ready)  # one that connected as the last one left keeps it alive
        _answer_reaps(clients, abandoned)


def _accept(listener, clients, ready):
    while True:
        try:
            conn, _addr = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(True)
        # the socket's folder is the owner's alone; the check keeps even a misplaced one private
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.getuid():
            conn.close()
            continue
        clients[conn] = {"children": set(), "reap": None}
        try:
            _send(conn, {"ready": dict(ready, threads=thread_count())})
        except OSError:
            pass  # gone already: its next recv says so


def _handle(sock, clients, abandoned, listener, ready, idle):
    """One request of one client. Returns the job only in a forked child."""
    client = clients[sock]
    try:
        data, fds, flags, _addr = socket.recv_fds(sock, MAX_REQUEST, 8)
    except OSError:
        data, fds = b"", []
    if not data:  # the client closed its end (or died): nothing of its may outlive it
        for pid in client["children"]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        abandoned |= client["children"]
        idle["until"] = time.monotonic() + client.get("linger_s", 0.0)  # nothing of ours may outlive the session
        del clients[sock]
        sock.close()
        return None
    reply = None
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ValueError(f"request truncated (over {MAX_REQUEST} bytes or too many fds)")
        req = json.loads(data)
        if req["op"] == "run":
            threads = thread_count()
            if threads != 1:
                reply = {"error": f"refusing to fork: the server has {threads} threads"}
            elif len(fds) != 4:
                reply = {"error": f"expected 4 file descriptors, got {len(fds)}"}
            else:
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    try:
                        return enter_child([listener, *clients], req, fds)
                    except BaseException as exc:  # never back into the server loop
                        child_failed(exc)
                client["children"].add(pid)
                reply = {"pid": pid}
        elif req["op"] == "reap":
            if req["pid"] in client["children"]:  # a client reaps only its own children
                client["reap"] = (req["pid"], time.monotonic() + req.get("wait_s", 5.0))
            else:
                reply = {"status": None, "cpu_s": None}
        elif req["op"] == "info":
            with open("/proc/self/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            reply = {"pid": os.getpid(), "threads": thread_count(), "children": len(client["children"]),
                     "clients": len(clients), "rss_kb": int(fields["VmRSS"].split()[0]),
                     "gc_objects": len(gc.get_objects()), "restarts": ready["restarts"]}
        elif req["op"] == "bye":  # asked under the harness's lock: count connections made before it
            _accept(listener, clients, ready)
            client["linger_s"] = float(req.get("linger_s", 0.0))
            reply = {"others": len(clients) - 1}
        else:
            reply = {"error": f"unknown request {req['op']!r}"}
    except Exception as exc:  # a malformed request must not take the server down
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    for fd in fds:
        os.close(fd)
    if reply is not None:
        try:
            _send(sock, reply)
        except OSError:
            pass  # the client is gone: its next recv says so
    return None


def _answer_reaps(clients, abandoned):
    for sock, client in list(clients.items()):
        if client["reap"] is None:
            continue
        pid, deadline = client["reap"]
        status, cpu = _reap_child(pid, 0)
        if status is None and time.monotonic() < deadline:
            continue
        client["reap"] = None
        if status is None:
            abandoned.add(pid)  # not exited yet (stuck in the kernel?): reaped later
        else:
            client["children"].discard(pid)
        try:
            _send(sock, {"status": status, "cpu_s": cpu})
        except OSError:
            pass
    for pid in list(abandoned):
        if _reap_child(pid, 0)[0] is not None:
            abandoned.discard(pid)
            for client in clients.values():
                client["children"].discard(pid)
