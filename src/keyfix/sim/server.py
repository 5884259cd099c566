"""A moto server on 127.0.0.1 in this process, with the gap layer installed.

ThreadedMotoServer shares this process's moto backends, so the gap layer (which patches
moto's models and responses) and the failure helpers in `moto_gaps` apply to it too.
"""

from __future__ import annotations

from typing import Any

from keyfix.sim import moto_gaps


class LocalMoto:
    """`with LocalMoto() as url:` -> "http://127.0.0.1:<port>"; point AWS_ENDPOINT_URL at it."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: Any = None
        self._installed_gaps = False
        self.url: str | None = None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        # Fills the gaps only if nobody else did, and then takes them out again on stop:
        # the process (a test session) gets moto back as it found it.
        self._installed_gaps = not moto_gaps.is_installed()
        moto_gaps.install()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._installed_gaps:
            moto_gaps.uninstall()
            self._installed_gaps = False

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
