"""Bounded time series: when a series is full, every other point is dropped, so memory stays bounded while the
history still spans the whole run (like TensorBoard's reservoir, but deterministic)."""

from __future__ import annotations

from typing import Any


class Series:
    def __init__(self, maxlen: int):
        self.maxlen = max(2, maxlen)
        self.steps: list[int] = []
        self.values: list[Any] = []

    def add(self, step: int, value: Any) -> None:
        if self.steps and step <= self.steps[-1]:
            return  # keep steps strictly increasing (e.g. after a restore to an earlier step)
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) > self.maxlen:
            self.steps = self.steps[::2]
            self.values = self.values[::2]

    def truncate(self, step: int) -> None:
        """Forget points after `step` (used when training rewinds to the last good state)."""
        keep = sum(1 for s in self.steps if s <= step)
        del self.steps[keep:], self.values[keep:]

    def to_dict(self) -> dict:
        return {"step": list(self.steps), "value": list(self.values)}


class History:
    def __init__(self, maxlen: int):
        self.maxlen = maxlen
        self.series: dict[str, Series] = {}

    def add(self, step: int, **values: Any) -> None:
        for k, v in values.items():
            if v is None:
                continue
            self.series.setdefault(k, Series(self.maxlen)).add(step, v)

    def truncate(self, step: int) -> None:
        for s in self.series.values():
            s.truncate(step)

    def to_dict(self) -> dict[str, dict]:
        return {k: s.to_dict() for k, s in self.series.items()}

    @classmethod
    def from_dict(cls, d: dict, maxlen: int) -> History:
        h = cls(maxlen)
        for k, v in d.items():
            s = Series(maxlen)
            s.steps, s.values = list(v["step"]), list(v["value"])
            h.series[k] = s
        return h

    def last(self, name: str, default: Any = None) -> Any:
        s = self.series.get(name)
        return s.values[-1] if s and s.values else default
