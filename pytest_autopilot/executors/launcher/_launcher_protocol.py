"""What the harness (``warm.py``) and the fork server (``_launcher_serve.py``) agree on.

Imported by both: by the harness as ``pytest_autopilot.executors.launcher._launcher_protocol``, by the
server as a sibling of the launcher script. So it imports nothing at all.
"""

# Largest request (JSON: launcher config + env + argv). Requests are ~2-5 kB. A larger receive
# buffer (1 MB was tried) fragments the glibc heap: the server's RSS then grew ~2.5 kB per attempt.
MAX_REQUEST = 64 * 1024
