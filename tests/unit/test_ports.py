"""A service's preferred port is taken only by a listener: a server stopped a moment ago
(its connections in TIME_WAIT) leaves it free, as it is to the next server's bind."""

from __future__ import annotations

import socket

from labkit.runtimes.local import pick_port


def test_a_port_in_time_wait_is_still_preferred():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
    client.close()
    server.close()
    assert pick_port(port) == port


def test_a_listening_port_is_not():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        assert pick_port(port) != port
