"""The forked child of the warm fork server (``_launcher_serve.py``): it turns itself into what the
harness's Popen plus the cold launcher would have made (own session, the request's fds, environment
and confinement), runs the script in-process like ``python -E -s script`` and ends like interpreter
shutdown, minus the module teardown. Standalone like the launcher: only the standard library and its
own siblings.
"""

import gc
import json
import os
import signal
import sys

if __package__:  # imported as a module of pytest_autopilot (the harness's side, tests)
    from ._launcher_confine import confine, finish_setup, libc, new_report
else:  # run by path in the sandbox: _launcher.py put this folder on sys.path
    from _launcher_confine import confine, finish_setup, libc, new_report


def child_failed(exc):
    try:
        import traceback

        sys.stderr.write("sandbox warm executor: setting up the run failed:\n"
                         + "".join(traceback.format_exception(exc)))
        sys.stderr.flush()
    finally:
        os._exit(126)


def enter_child(sockets, req, fds):
    """In the freshly forked child: become what the harness's Popen + the launcher would make."""
    for sock in sockets:  # closed as objects, so none later closes an fd number the script reuses
        sock.close()
    os.setsid()  # own session and process group: the harness kills the group
    for target, fd in enumerate(fds):  # stdin, stdout, stderr, status; received fds are all >= 3
        if fd != target:
            os.dup2(fd, target)
    os.closerange(4, os.sysconf("SC_OPEN_MAX"))  # nothing of the server leaks into the child
    _fresh_stdio()
    cfg = dict(req["cfg"], status_fd=3)
    os.chdir(cfg["workdir"])
    os.environ.clear()  # os.environ also updates the C-level environment (getenv in libraries)
    os.environ.update(req["env"])
    report = new_report()
    confine(cfg, report)
    finish_setup(cfg, report, for_exec=False)
    return req


def _fresh_stdio():
    """sys.stdin/stdout/stderr as interpreter startup creates them, for the new fds 0-2.

    The server's objects were made for its own files (io caches e.g. ``seekable()`` at creation);
    they hold no buffered data (flushed before the fork).
    """
    import io

    unbuffered = bool(getattr(sys.__stdout__, "write_through", False))  # -u (never set: the server runs -E -s)
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        old = getattr(sys, f"__{name}__", None) or getattr(sys, name)
        raw = io.FileIO(fd, mode + "b", closefd=False)
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        text = io.TextIOWrapper(buffered, encoding=old.encoding, errors=old.errors, newline="\n",
                                line_buffering=not unbuffered and (raw.isatty() or name == "stderr"),
                                write_through=unbuffered and mode == "w")
        raw.name = f"<{name}>"
        text.mode = mode
        setattr(sys, name, text)
        setattr(sys, f"__{name}__", text)


def _refresh_preloaded_state():
    """Undo import-time state of the preloaded modules that came from the server's environment."""
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # cached gettempdir(): the server's TMPDIR, not this run's
    nprandom = sys.modules.get("numpy.random")
    if nprandom is not None:  # Python's random reseeds itself after fork; numpy's global state does not
        try:
            nprandom.seed()
        except Exception:
            pass
    kcfg = sys.modules.get("keras.src.backend.config")
    if kcfg is not None and hasattr(kcfg, "_KERAS_DIR"):  # what keras does at import, for this HOME
        try:
            if "KERAS_HOME" in os.environ:
                home = os.environ["KERAS_HOME"]
            else:
                base = os.path.expanduser("~")
                home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
            kcfg._KERAS_DIR = home
            kcfg._config_path = os.path.expanduser(os.path.join(home, "keras.json"))
            os.makedirs(home, exist_ok=True)
            if not os.path.exists(kcfg._config_path):
                with open(kcfg._config_path, "w") as f:
                    f.write(json.dumps({"floatx": kcfg.floatx(), "epsilon": kcfg.epsilon(), "backend": kcfg._BACKEND,
                                        "image_data_format": kcfg.image_data_format()}, indent=4))
        except Exception:
            pass


def run_script(job):
    """Run the script like ``python -E -s script args...`` in this confined process.

    Same as ``runpy.run_path(path, run_name="__main__")`` except that, as with the interpreter,
    ``sys.argv[0]`` stays as given, ``__file__`` is absolute and the module stays
    ``sys.modules["__main__"]`` until exit. Returns (exit code, interrupted) like CPython
    computes them: SystemExit's code (None -> 0, int -> it, anything else printed to stderr -> 1);
    any other uncaught exception prints CPython's traceback (without our frames) -> 1.
    """
    import builtins
    import importlib.machinery
    import types

    script, args = job["script"], job["args"]
    path = os.path.abspath(os.path.join(job["cfg"]["workdir"], script))
    _refresh_preloaded_state()
    sys.argv = [script, *args]
    sys.orig_argv = [sys.executable, "-s", script, *args]
    sys.path[0] = os.path.dirname(path)
    main_module = types.ModuleType("__main__")
    main_module.__dict__.update(__file__=path, __cached__=None, __builtins__=builtins, __spec__=None,
                                __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    sys.modules["__main__"] = main_module
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        sys.stderr.write(f"{sys.executable}: can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}\n")
        return 2, False
    try:
        exec(compile(source, path, "exec", dont_inherit=True), main_module.__dict__)
    except SystemExit as exc:
        return _system_exit_code(exc), False
    except BaseException as exc:
        _print_uncaught(exc, path)
        return 1, isinstance(exc, KeyboardInterrupt)
    return 0, False


def _system_exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:  # CPython prints any other value to stderr and exits 1
        sys.stderr.write(f"{code}\n")
    except Exception:
        pass
    return 1


def _print_uncaught(exc, path):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:  # drop this module's frames
        tb = tb.tb_next
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except BaseException:
        sys.__excepthook__(type(exc), exc, tb)


def shutdown(code, interrupted=False):
    """End the warm child like interpreter shutdown does, minus the module teardown.

    Kept, in CPython's order: non-daemon threads joined (and ``threading`` exit hooks), atexit
    handlers, the script's ``__main__`` globals released (their finalisers run: unclosed files get
    flushed), a garbage collection, Python and C stdio flushed (a failing stdout flush turns exit
    0 into 120). Skipped: clearing every other module's globals, C atexit handlers and C++ static
    destructors -- full teardown costs 0.5-1.6 s after an MC attempt, as it touches (and so
    copies) the whole preloaded heap; this costs ~0.05 s.
    """
    import atexit
    import threading

    try:
        threading._shutdown()
    except BaseException:
        pass
    atexit._run_exitfuncs()
    main_module = sys.modules.pop("__main__", None)
    if main_module is not None:
        main_module.__dict__.clear()
    del main_module
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            if stream is sys.stdout and code == 0:
                code = 120
    libc.fflush(None)
    if interrupted:  # CPython re-raises an uncaught KeyboardInterrupt as SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code & 0xFF)
