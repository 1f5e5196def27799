"""How the client names a node: an IP (with the client's default port), ``"ip:port"``,
``"[v6]:port"``, an ``(ip, port)`` pair, or an ``http://host:port`` URL. ScyllaDB's tests pass bare
IPs; tests of a server on a random port (port 0) pass pairs. Every event and error names its node
as ``"ip:port"`` (``"[v6]:port"`` for IPv6), the form ``node_tag`` makes."""

from __future__ import annotations

from typing import Any, Tuple, Union
from urllib.parse import urlsplit

Node = Union[str, Tuple[str, int]]


def parse_node(node: Any, default_port: int) -> Tuple[str, int]:
    """Return ``(host, port)`` for any accepted spelling of a node."""
    if isinstance(node, (tuple, list)):
        if len(node) != 2:
            raise ValueError(f"a node pair must be (ip, port), not {node!r}")
        return str(node[0]), int(node[1])
    text = str(node).strip()
    if not text:
        raise ValueError("empty node address")
    if "://" in text:
        parts = urlsplit(text)
        if not parts.hostname:
            raise ValueError(f"no host in node URL {text!r}")
        return parts.hostname, parts.port or default_port
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(f"unterminated '[' in node address {text!r}")
        if rest.startswith(":"):
            return host, int(rest[1:])
        return host, default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port  # an IPv4 address, a name, or a bare IPv6 address


def host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def node_tag(host: str, port: int) -> str:
    return f"{host_for_url(host)}:{port}"


def base_url(host: str, port: int) -> str:
    return f"http://{host_for_url(host)}:{port}"
