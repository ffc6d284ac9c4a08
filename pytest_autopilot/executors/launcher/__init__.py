"""The sandbox's launcher: stdlib-only scripts run by path (``python -I _launcher.py``) in a new
session, before and around the generated program (``executors.sandbox``), and the warm fork
server's side (``_launcher_serve.py``). Run as scripts they import each other as top-level
modules (``_launcher.py`` puts this folder on ``sys.path``); they also import as modules of this
package, which is how the harness reads their constants (``_launcher_protocol.MAX_REQUEST``)."""
