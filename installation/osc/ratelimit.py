"""Per-sender token buckets: one flooding phone cannot starve the others.

A sender is a host:port (a phone's app keeps its source port; phones behind one NAT share a
host but not a port). Buckets of senders gone quiet are forgotten when the table is full:
a bucket idle long enough to be full again carries no information, so forgetting it changes
nothing; beyond that the longest idle go first, so spoofed sources cannot grow memory.
"""
from __future__ import annotations


class TokenBuckets:
    def __init__(self, rate: float, burst: float, max_senders: int = 4096):
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self.max_senders = int(max_senders)
        self._b: dict[str, list[float]] = {}   # src -> [tokens, last refill time]
        self.forgotten = 0

    def _bucket(self, src: str, now: float) -> list[float]:
        b = self._b.get(src)
        if b is None:
            if len(self._b) >= self.max_senders:
                self._prune(now)
            b = [self.burst, now]
            self._b[src] = b
        else:
            dt = now - b[1]
            if dt > 0.0:
                b[0] = min(self.burst, b[0] + dt * self.rate)
                b[1] = now
        return b

    def allows(self, src: str, now: float) -> bool:
        """Whether a message from src would pass now (consumes nothing)."""
        return self._bucket(src, now)[0] >= 1.0

    def take(self, src: str, now: float) -> bool:
        """Spend one token; False (and nothing spent) when the sender is over its rate."""
        b = self._bucket(src, now)
        if b[0] >= 1.0:
            b[0] -= 1.0
            return True
        return False

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        keep = {s: b for s, b in self._b.items() if now - b[1] < full_after}
        if len(keep) >= self.max_senders:
            newest = sorted(keep.items(), key=lambda kv: kv[1][1])[len(keep) - self.max_senders // 2:]
            keep = dict(newest)
        self.forgotten += len(self._b) - len(keep)
        self._b = keep

    def __len__(self) -> int:
        return len(self._b)
