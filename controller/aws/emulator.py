"""The embedded AWS: moto's server on a free loopback port, for the demo and for trying the
controller with no account. The controller itself is not told; it only sees AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import logging
import socket
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
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise MissingEmulator(
                "the embedded emulator needs moto: pip install 'mlops-controller[demo]'"
            ) from exc
        _quiet()
        port = _free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
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
