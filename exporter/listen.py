"""The HTTP server's listen address, as the settings take it: ``host:port``, ``:port`` or ``[v6]:port``."""

from __future__ import annotations


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` to (host, port); an empty host means all."""
    value = value.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError("expected host:port, e.g. 0.0.0.0:9822 or :9822")
    port = int(port_text)
    if port > 65535:
        raise ValueError("the port must be from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return (host or "0.0.0.0", port)  # noqa: S104  (an empty host means all, as in Go exporters)
