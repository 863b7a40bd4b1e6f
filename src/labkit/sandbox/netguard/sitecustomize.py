"""Loaded by every Python process the review sandbox starts (it is on PYTHONPATH).

A guard, not a wall: it refuses, in Python, connections to anything but loopback
(LABKIT_SANDBOX_NET=loopback, labs with services) or to anything at all (=none).
Native code or a non-Python program bypasses it; the network namespace (labs
without services) and Docker's --network none are the real boundaries.
"""

import os
import socket

_MODE = os.environ.get("LABKIT_SANDBOX_NET", "")
_LOOPBACK = ("127.", "::1", "localhost")
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_sendto = socket.socket.sendto


def _allowed(sock, address):
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) and address else str(address)
    return _MODE == "loopback" and str(host).startswith(_LOOPBACK)


def _refuse(address):
    raise PermissionError(f"labkit review sandbox: network access to {address!r} is blocked")


def _connect(self, address):
    if not _allowed(self, address):
        _refuse(address)
    return _original_connect(self, address)


def _connect_ex(self, address):
    if not _allowed(self, address):
        _refuse(address)
    return _original_connect_ex(self, address)


def _sendto(self, data, *args):
    address = args[-1]
    if not _allowed(self, address):
        _refuse(address)
    return _original_sendto(self, data, *args)


if _MODE:
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.socket.sendto = _sendto
