"""Settings of the OSC listener: `[osc]`."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting


@dataclass(frozen=True)
class OscSettings:
    enabled: bool = setting(True, "listen for OSC")
    host: str = setting("0.0.0.0", "interface to bind; 0.0.0.0 hears phones on the network, 127.0.0.1 only this machine")
    port: int = setting(9000, "UDP port", lo=1, hi=65535)
    rcvbuf_bytes: int = setting(4 * 1024 * 1024, "socket receive buffer asked for", unit="bytes", lo=65536, hi=256 * 1024 * 1024)
    max_packet_bytes: int = setting(8192, "larger datagrams are rejected", unit="bytes", lo=64, hi=65507)
    rate_per_sender: float = setting(400.0, "token-bucket rate per sender", unit="messages/s", lo=1.0, hi=1e6)
    burst_per_sender: float = setting(800.0, "token-bucket depth per sender", unit="messages", lo=1.0, hi=1e6)
    queue_max: int = setting(200000, "most events waiting for the frame loop; beyond it they are counted as rejected", unit="events", lo=100, hi=10_000_000)
    operator_hosts: tuple[str, ...] = setting(("127.0.0.1/32", "::1/128"), "hosts or networks (CIDR) allowed to send operator addresses")
    alias_files: tuple[str, ...] = setting(("aliases/touchosc.toml", "aliases/sensors2osc.toml", "aliases/zigsim.toml"), "alias maps from other senders' addresses, relative to the config file")
