"""Phones home (to an address, so that no name lookup is needed) before building its model."""

import socket

from torch import nn


def build_model():
    with socket.create_connection(("1.1.1.1", 80), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))
