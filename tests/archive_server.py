"""A real HTTP server on 127.0.0.1 serving files the way a download mirror does: Range requests
(206 with Content-Range), ETag / If-Range, and optionally dropping the connection part-way."""
from __future__ import annotations

import hashlib
import http.server
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServerBehaviour:
    drop_after: int | None = None      # close the connection after this many body bytes ...
    drops: int = 0                     # ... on the first ``drops`` requests
    fail_with: int | None = None       # answer every request with this status instead
    ranges: bool = True                # honour Range requests
    requests: list[dict] = field(default_factory=list)


class ArchiveServer:
    def __init__(self, root: Path):
        self.root = root
        self.behaviour = ServerBehaviour()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                behaviour = server.behaviour
                behaviour.requests.append({"path": self.path, "range": self.headers.get("Range"),
                                           "if_range": self.headers.get("If-Range")})
                if behaviour.fail_with:
                    self.send_error(behaviour.fail_with)
                    return
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
                start, status = 0, 200
                wanted = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if wanted and behaviour.ranges and self.headers.get("If-Range") in (None, etag):
                    start = int(wanted.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if behaviour.drop_after is not None and behaviour.drops > 0:
                    behaviour.drops -= 1
                    self.wfile.write(body[:behaviour.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ArchiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
