"""The HTTP side of ``striate explore``: the standard library's ``ThreadingHTTPServer`` on 127.0.0.1.

Routes: ``GET /`` (the page), ``GET /static/{app.js,style.css,index.html}``, ``GET /api/model``,
``POST /api/predict`` (JSON ``{"image": data URL, "source": "canvas" | "file"}``, or the raw
bytes of an image file with ``?source=file``) and ``POST /api/unit`` (JSON ``{"pixels",
"layer", "channel", "y", "x"}``). Errors are ``{"error": message}`` with a 4xx status (5xx for
a bug, logged with its traceback); no request can stop the server.

    server = make_server("runs/lenet5-1", port=0)      # any free port
    print(server.url); server.serve_forever()
"""
import errno
import http.server
import importlib.resources
import json
import sys
import traceback
import urllib.parse

from striate.viz.explore.app import MAX_IMAGE_BYTES, MAX_PIXELS, BadInput, ExploreApp, parse_data_url

HOST = "127.0.0.1"        # local only: the page runs the visitor's model on what they draw
_STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
           "style.css": "text/css; charset=utf-8"}
_DRAIN_LIMIT = 64 * 2**20  # read (and discard) at most this much of a refused body, so the client sees the answer


def _static(name):
    return importlib.resources.files("striate.viz.explore").joinpath("static", name).read_bytes()


class ExploreServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server holding the ``ExploreApp``; ``url`` is where it listens."""

    daemon_threads = True
    # Ctrl-C stops at once: closing the server does not wait for handler threads (a browser's
    # keep-alive connection, a request still computing); as daemons they end with the process.
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, app, *, max_body_bytes, quiet=True):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.quiet = quiet
        super().__init__(address, _Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "striate-explore"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        if not self.server.quiet:
            super().log_message(format, *args)

    # ----- answering -------------------------------------------------------------------------------
    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, value):
        self._send(status, json.dumps(value, allow_nan=False).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status, message):
        self._json(status, {"error": message})

    def _guarded(self, route):
        try:
            route()
        except BadInput as error:
            self._error(error.status, str(error))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:   # a bug: answer, log, keep serving
            traceback.print_exc(file=sys.stderr)
            self._error(500, f"internal error: {type(error).__name__}: {error}")

    # ----- GET -------------------------------------------------------------------------------------
    def do_GET(self):
        self._guarded(self._get)

    def do_HEAD(self):
        self._guarded(self._get)

    def _get(self):
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/", "/index.html"):
            path = "/static/index.html"
        if path.startswith("/static/") and path[len("/static/"):] in _STATIC:
            name = path[len("/static/"):]
            self._send(200, _static(name), _STATIC[name])
        elif path == "/api/model":
            self._json(200, self.server.app.info())
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._error(404, f"no such page: {path}")

    # ----- POST ------------------------------------------------------------------------------------
    def do_POST(self):
        self._guarded(self._post)

    def _body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise BadInput("the request has no Content-Length", status=411)
        try:
            length = int(length)
        except ValueError:
            self.close_connection = True
            raise BadInput(f"bad Content-Length {length!r}") from None
        if length > self.server.max_body_bytes:
            if length <= _DRAIN_LIMIT:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            else:
                self.close_connection = True
            raise BadInput(f"the upload is {length / 2**20:.1f} MiB; the limit is "
                           f"{self.server.max_body_bytes / 2**20:.1f} MiB", status=413)
        return self.rfile.read(length)

    def _json_body(self):
        body = self._body()
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadInput("the request body is not valid JSON") from None

    def _post(self):
        split = urllib.parse.urlsplit(self.path)
        app = self.server.app
        if split.path == "/api/predict":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type == "application/json":
                request = self._json_body()
                if not isinstance(request, dict) or "image" not in request:
                    raise BadInput("expected a JSON object with an 'image' data URL")
                source = request.get("source", "file")
                data = parse_data_url(request["image"])
            else:
                data = self._body()
                source = urllib.parse.parse_qs(split.query).get("source", ["file"])[0]
            if source not in ("canvas", "file"):
                raise BadInput(f"source must be 'canvas' or 'file', got {source!r}")
            self._json(200, app.predict(data, source))
        elif split.path == "/api/unit":
            self._json(200, app.unit(self._json_body()))
        else:
            self._body()
            self._error(404, f"no such endpoint: {split.path}")


def make_server(checkpoint, *, port=8765, fallback=False, max_image_bytes=MAX_IMAGE_BYTES, max_pixels=MAX_PIXELS,
                quiet=True):
    """An ``ExploreServer`` for ``checkpoint`` on 127.0.0.1 (call ``serve_forever``; ``url`` says where).

    Args:
        checkpoint: a run directory or checkpoint file, or an ``ExploreApp``.
        port: the port; 0 picks a free one.
        fallback: when ``port`` is taken, listen on a free one instead of failing.
        max_image_bytes: the largest image file accepted (a JSON body may be 4/3 of it, base64).
        max_pixels: the largest image (width × height) accepted.
        quiet: do not log each request to stderr.
    """
    app = checkpoint if isinstance(checkpoint, ExploreApp) else ExploreApp(
        checkpoint, max_image_bytes=max_image_bytes, max_pixels=max_pixels)
    max_body = app.max_image_bytes * 4 // 3 + 4096        # base64 in a JSON envelope
    try:
        return ExploreServer((HOST, port), app, max_body_bytes=max_body, quiet=quiet)
    except OSError as error:
        if not (fallback and error.errno == errno.EADDRINUSE):
            raise
    return ExploreServer((HOST, 0), app, max_body_bytes=max_body, quiet=quiet)


__all__ = ["make_server", "ExploreServer", "HOST"]
