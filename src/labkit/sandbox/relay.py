"""Let a command in its own network namespace reach the lab's services, and nothing else.

A network namespace has no route anywhere, which is what a review wants — except
that a lab's code must reach the lab's own services (MLflow on 127.0.0.1:PORT). A
Unix socket is a file, and files cross network namespaces; so, per service port:

    candidate → 127.0.0.1:PORT (inside the namespace) → ns relay → /tmp/lk-…/PORT.sock
              → host relay → 127.0.0.1:PORT (the real service)

The host relay runs as threads of the grader for the duration of one command; the
namespace relay is a forked child of the confined command, killed with its pid
namespace. Only the listed ports are reachable; everything else has no route.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import tempfile
import threading
from pathlib import Path

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class HostRelay:
    """Unix sockets in a short temp folder, each forwarding to 127.0.0.1:port."""

    def __init__(self, ports: list[int]) -> None:
        # Short path: a Unix socket's path is limited to 108 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="lk-", dir="/tmp"))
        self.folder.chmod(0o755)
        self.sockets: dict[int, str] = {}
        self._listeners: list[socket.socket] = []
        for port in ports:
            path = str(self.folder / f"{port}.sock")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(16)
            self._listeners.append(listener)
            self.sockets[port] = path
            threading.Thread(target=_accept, args=(listener, lambda p=port: _tcp(p)), daemon=True).start()

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> HostRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_namespace_relay(sockets: dict[str, str]) -> None:
    """Inside the namespace: bring loopback up and fork a relay of each port to its socket."""
    _loopback_up()
    listeners = []
    for port, path in sockets.items():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(port)))
        listener.listen(16)
        listeners.append((listener, path))
    if os.fork() != 0:
        for listener, _ in listeners:
            listener.close()  # the command keeps none of the relay's sockets
        return
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    threads = [threading.Thread(target=_accept, args=(lst, lambda p=path: _unix(p)), daemon=True)
               for lst, path in listeners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os._exit(0)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def _tcp(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


def _accept(listener: socket.socket, connect) -> None:  # noqa: ANN001
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # closed: the command is over
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=_connection, args=(client, upstream), daemon=True).start()


def _connection(client: socket.socket, upstream: socket.socket) -> None:
    """Both directions until each side is done, then close both (half-closes pass through)."""
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
