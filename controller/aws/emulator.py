"""The embedded AWS: moto's server on a free loopback port, for the demo and for trying the
controller with no account. The controller itself is not told; it only sees AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import logging
import socket
import threading
import warnings
from typing import Any

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MissingEmulator(RuntimeError):
    pass


class Emulator:
    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self._server: Any = None
        self.url = ""

    def start(self) -> str:
        _quiet()
        port = _free_port()
        self._server = moto_server("127.0.0.1", port)
        self._server.start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def environment(self) -> dict[str, str]:
        """Standard AWS variables that point any AWS tool at this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **FAKE_CREDENTIALS,
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def moto_server(host: str, port: int) -> Any:
    """moto's threaded server, handling one request at a time.

    AWS takes concurrent calls; moto's backends are not thread-safe (two CreateStack calls
    at once can fail inside moto with "dictionary changed size during iteration"). The
    controller sends up to `--parallel` operations at once, so the emulator serializes them,
    which costs little: the GIL serializes moto's work anyway.
    """
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server
    except ImportError as exc:
        raise MissingEmulator(
            "the embedded emulator needs moto: pip install 'mlops-controller[demo]'"
        ) from exc

    class OneAtATime(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            lock = threading.Lock()

            def serialized(environ: Any, start_response: Any) -> Any:
                with lock:
                    return app(environ, start_response)

            self._server = make_server(
                host, port, serialized, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return OneAtATime(ip_address=host, port=port, verbose=False)


def _quiet() -> None:
    """The emulator's request log and its "resource type not supported" notes are its own
    business; the person watching a demo wants the controller's output."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"moto(\.|$)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
