"""Settings of the OSC listener: `[osc]`."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..config.fields import setting


def operator_networks(hosts) -> tuple:
    """The allowed operator networks; `localhost` stands for both loopbacks.

    Names other than localhost are refused rather than resolved: a DNS answer at start-up
    is not something an exhibit's security should rest on.
    """
    nets = []
    for h in hosts:
        if h.strip().lower() == "localhost":
            nets += [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
            continue
        try:
            nets.append(ipaddress.ip_network(h.strip().strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"operator_hosts: {h!r} is not an IP address or a CIDR network "
                             "(e.g. \"192.168.1.0/24\", \"10.0.0.5\" or \"localhost\")") from None
    return tuple(nets)


@dataclass(frozen=True)
class OscSettings:
    enabled: bool = setting(True, "listen for OSC")
    host: str = setting("::", "interface to bind; \"::\" hears phones on the network over IPv4 and IPv6 (IPv4 only where IPv6 is off), 0.0.0.0 IPv4 only, 127.0.0.1 only this machine")
    port: int = setting(9000, "UDP port (0 picks a free one, for tests)", lo=0, hi=65535)
    rcvbuf_bytes: int = setting(4 * 1024 * 1024, "socket receive buffer asked for", unit="bytes", lo=65536, hi=256 * 1024 * 1024)
    max_packet_bytes: int = setting(8192, "larger datagrams are rejected", unit="bytes", lo=64, hi=65507)
    rate_per_sender: float = setting(400.0, "token-bucket rate per sender", unit="messages/s", lo=1.0, hi=1e6)
    burst_per_sender: float = setting(800.0, "token-bucket depth per sender", unit="messages", lo=1.0, hi=1e6)
    queue_max: int = setting(200000, "most events waiting for the frame loop; beyond it they are counted as rejected", unit="events", lo=100, hi=10_000_000)
    operator_hosts: tuple[str, ...] = setting(("127.0.0.1/32", "::1/128"), "hosts or networks (CIDR) allowed to send operator addresses")
    alias_files: tuple[str, ...] = setting(("aliases/touchosc.toml", "aliases/sensors2osc.toml", "aliases/zigsim.toml"), "alias maps from other senders' addresses, relative to the config file")
    senders_max: int = setting(4096, "most senders whose rate limit is tracked at once; the longest idle are forgotten first", unit="count", lo=16, hi=1_000_000)

    def __post_init__(self):
        operator_networks(self.operator_hosts)  # raises ValueError -> ConfigError naming the key
