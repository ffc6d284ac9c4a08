"""Sandbox launcher: confines itself, then execs the generated code.

Run by ``sandbox.Sandbox.run`` as::

    python -I _launcher.py '<json config>' -- argv...

Limits are applied here, in a fresh single-threaded process, rather than in ``preexec_fn``
of the (multi-threaded) harness. Only the standard library is imported, and this script's own
standalone siblings, which import nothing else either (never ``pytest_autopilot``):
``_launcher_confine.py`` (the confinement steps: namespaces, capabilities, rlimits, the pid-1
init), ``_launcher_mounts.py`` (the file system view), ``_launcher_serve.py`` (the warm fork
server), ``_launcher_child.py`` (its forked child, which runs the script in-process) and
``_launcher_protocol.py`` (what that server and the harness agree on). Setup steps that the OS may
refuse are best effort; what was actually applied is reported as one JSON line on ``status_fd`` just before ``exec``.
Failing rlimits are fatal (exit 126): every run must at least have those.

The same steps (``confine`` + ``finish_setup``) serve the warm executor: run as
``python -E -s _launcher.py --serve '<json>'`` this script is a fork server that imported
TensorFlow once and, per request, forks a child that confines itself with them and then runs the
script in-process instead of exec'ing it (see ``_launcher_serve.py``, ``_launcher_child.py`` and ``warm.py``).

Imported as a module (``pytest_autopilot.executors.launcher._launcher``) it does nothing: the siblings
are imported, and ``sys.path`` touched, only when it runs as a script.
"""

import json
import os
import sys


def main():
    from _launcher_confine import confine, exec_target, new_report

    cfg = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--", 2) + 1:]
    report = new_report()
    confine(cfg, report)
    exec_target(argv, cfg, report)


def serve_main():
    from _launcher_child import run_script, shutdown
    from _launcher_serve import serve

    shutdown(*run_script(serve(json.loads(sys.argv[2]))))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:  # ``-I`` leaves the script's folder off sys.path; appended, it shadows nothing
        sys.path.append(here)
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve_main()
    else:
        main()
