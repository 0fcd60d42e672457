"""A TCP relay on loopback that can stop answering: a server behind a network that went dead.

Connections stay open and nothing is refused, so a client's request hangs
until its own read timeout (the S3 client's is a minute, retried), which is
what a store that vanished mid-run looks like from a run worker.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class StallingRelay:
    """Relays 127.0.0.1:``port`` to ``target_port`` until :meth:`stall`; from then on, silence."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stalled = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stall(self) -> None:
        """Stop passing bytes either way, and answer no new connection, without closing any."""
        self._stalled.set()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> StallingRelay:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._keep(client)
            if self._stalled.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(self._target)
            self._keep(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self._stalled.is_set():
                    self._closed.wait()  # hold the connection open, pass nothing on
                    return
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # either side closed
            return
