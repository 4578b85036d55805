"""What the tests' fake Web APIs (Slack, Microsoft Graph) share: a JSON answer, and serving in a thread."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def send_json(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: Any) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def serve_in_thread(server: ThreadingHTTPServer) -> None:
    # serve_forever checks for shutdown() once per poll interval (0.5 s by default): every test's
    # teardown would wait that long.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
