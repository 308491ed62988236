"""A loopback HTTP proxy that puts AWS-shaped faults between a client and an emulator.

Point `AWS_ENDPOINT_URL` at `FaultProxy(upstream).start()` and every AWS call goes through it:
it forwards the request unchanged, or answers as AWS does when it throttles (`Throttling`,
`ThrottlingException`, S3 `SlowDown`), fails (500/503), or never answers (a dropped
connection). Faults are drawn from a seeded random generator so a run can be repeated, and
the rates are plain attributes, so a test can remove a fault between two runs.

Standard library only: the benchmark and the tests import it without new dependencies.
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_ATTEMPT = re.compile(r"attempt=(\d+)")


@dataclass(frozen=True)
class Call:
    """What the proxy understood of one request: enough to choose and shape a fault."""

    method: str
    path: str
    service: str
    operation: str
    protocol: str
    """`json` (X-Amz-Target), `rest-xml` (S3) or `query` (CloudFormation, SNS, ...)."""
    attempt: int = 1
    """Which attempt of the call this is, as the SDK says (`amz-sdk-request: attempt=2`)."""
    token: str = ""
    """The request's ClientRequestToken, if it has one (query protocol)."""


Matcher = Callable[[Call], bool]


class FaultProxy:
    """Forward to `upstream`, injecting faults at the given rates (each from 0 to 1).

    `timeout_mode` says what a timeout looks like: `"before"` drops the connection without
    forwarding; `"after"` forwards (the call takes effect upstream) and then drops the answer,
    the case that needs idempotent retries. `hold_seconds` keeps the connection open that long
    before dropping it (set it above the client's read timeout for a true read timeout).
    `match`, when given, limits faults to the calls it accepts; others always pass through.
    """

    def __init__(
        self,
        upstream: str,
        *,
        latency_ms: float = 0.0,
        throttle_rate: float = 0.0,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        max_rps: float | None = None,
        seed: int = 0,
        timeout_mode: str = "before",
        hold_seconds: float = 0.0,
        match: Matcher | None = None,
        html_errors: bool = False,
        errors_after: bool = False,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        if timeout_mode not in ("before", "after"):
            raise ValueError("timeout_mode is 'before' or 'after'")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.latency_ms = latency_ms
        self.throttle_rate = throttle_rate
        self.error_rate = error_rate
        self.timeout_rate = timeout_rate
        self.max_rps = max_rps
        self.timeout_mode = timeout_mode
        self.hold_seconds = hold_seconds
        self.match = match
        self.html_errors = html_errors
        """Errors are a web server's own HTML 500 page (`HTML_500`), which no SDK parses."""
        self.errors_after = errors_after
        """Forward a call before answering it with an error: it took effect all the same."""
        self.stats: Counter[str] = Counter()
        """`requests`, `finished` (handled, whatever the answer), `forwarded`, `throttled`,
        `errors`, `timeouts`."""
        self.operations: Counter[str] = Counter()
        """Requests seen, by `service.Operation` (counted before any fault is drawn)."""
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._tokens: float | None = None
        self._refilled = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fault-proxy", daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def count(self, key: str, call: Call | None = None) -> None:
        with self._lock:
            self.stats[key] += 1
            if call is not None:
                self.operations[f"{call.service}.{call.operation}"] += 1

    def draw(self, call: Call) -> str:
        """The fault for this call: `throttle`, `error`, `timeout` or `` (forward it)."""
        if self.match is not None and not self.match(call):
            return ""
        with self._lock:
            if self.max_rps is not None and not self._take_token():
                return "throttle"
            roll = self._random.random()
        for fault, rate in (
            ("throttle", self.throttle_rate),
            ("error", self.error_rate),
            ("timeout", self.timeout_rate),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return ""

    def choose(self, options: tuple[int, ...]) -> int:
        with self._lock:
            return self._random.choice(options)

    def _take_token(self) -> bool:
        assert self.max_rps is not None
        now = time.monotonic()
        capacity = max(1.0, self.max_rps)
        if self._tokens is None:
            self._tokens = capacity
        self._tokens = min(capacity, self._tokens + (now - self._refilled) * self.max_rps)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """An answer goes out as two writes (head, then body): with Nagle's algorithm the body
    waits for the client to acknowledge the head, which it delays by 40 ms, so every call
    through the proxy took about 45 ms more than its `latency_ms`."""

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _handle(self) -> None:
        proxy = self.proxy
        body = self._read_body()
        call = _describe(self.command, self.path, self.headers, body)
        proxy.count("requests", call)
        try:
            self._serve(call, body)
        finally:
            proxy.count("finished")

    def _serve(self, call: Call, body: bytes) -> None:
        proxy = self.proxy
        if proxy.latency_ms > 0:
            time.sleep(proxy.latency_ms / 1000.0)
        fault = proxy.draw(call)
        if fault == "throttle":
            proxy.count("throttled")
            self._answer(*_throttling(call))
        elif fault == "error":
            proxy.count("errors")
            if proxy.errors_after:
                self._forward(body, reply=False)
            if proxy.html_errors:
                self._answer(500, "text/html; charset=utf-8", HTML_500)
            else:
                self._answer(*_server_error(call, proxy.choose((500, 503))))
        elif fault == "timeout":
            proxy.count("timeouts")
            if proxy.timeout_mode == "after":
                self._forward(body, reply=False)
            self._drop()
        else:
            self._forward(body, reply=True)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes, *, reply: bool) -> None:
        proxy = self.proxy
        connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            proxy.count("forwarded")
            if not reply:
                return
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", response.getheader("Content-Length") or "0")
            else:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            connection.close()

    def _answer(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drop(self) -> None:
        if self.proxy.hold_seconds > 0:
            time.sleep(self.proxy.hold_seconds)
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass


def _describe(method: str, path: str, headers: Any, body: bytes) -> Call:
    scope = _CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(1) if scope else ""
    attempt = _ATTEMPT.search(headers.get("amz-sdk-request", ""))
    number = int(attempt.group(1)) if attempt else 1
    target = headers.get("X-Amz-Target", "")
    if target:
        return Call(method, path, service, target.rsplit(".", 1)[-1], "json", number)
    if service == "s3":
        operation = f"{method} {urllib.parse.urlsplit(path).path}"
        return Call(method, path, service, operation, "rest", number)
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
    if not fields:
        fields = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    action = fields.get("Action", [""])[0]
    token = fields.get("ClientRequestToken", [""])[0]
    protocol = "query" if action else "rest"
    return Call(method, path, service, action or method, protocol, number, token)


HTML_500 = (
    b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was "
    b"unable to complete your request.</p>\n"
)
"""What the emulator's web server (werkzeug) answers when a handler fails."""


def _throttling(call: Call) -> tuple[int, str, bytes]:
    request_id = uuid.uuid4()
    if call.protocol == "json":
        return (
            400,
            "application/x-amz-json-1.0",
            b'{"__type": "ThrottlingException", "message": "Rate exceeded"}',
        )
    if call.service == "s3":
        return (
            503,
            "application/xml",
            (
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                f"<RequestId>{request_id}</RequestId></Error>"
            ).encode(),
        )
    return (
        400,
        "text/xml",
        (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            f"<Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode(),
    )


def _server_error(call: Call, status: int) -> tuple[int, str, bytes]:
    code, message = (
        ("InternalFailure", "An internal error occurred")
        if status == 500
        else ("ServiceUnavailable", "Service is unavailable")
    )
    if call.service == "s3":
        code = "InternalError" if status == 500 else "ServiceUnavailable"
    request_id = uuid.uuid4()
    if call.protocol == "json":
        return (
            status,
            "application/x-amz-json-1.0",
            (f'{{"__type": "{code}", "message": "{message}"}}'.encode()),
        )
    if call.service == "s3":
        return (
            status,
            "application/xml",
            (
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>"
            ).encode(),
        )
    return (
        status,
        "text/xml",
        (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode(),
    )
