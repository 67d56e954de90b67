"""What one export sent to a tracker, and how its messages keep credentials out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TRACKERS = {"mlflow": "MLflow", "wandb": "W&B"}
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


@dataclass
class Delivery:
    """What one export sent, what was already there (skipped), and where it went."""

    tracker: str
    destination: str = ""
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        where = f" ({self.destination})" if self.destination else ""
        parts = [f"{len(self.sent)} run(s) sent"] + ([f"{len(self.skipped)} already there"] if self.skipped else [])
        return f"{TRACKERS[self.tracker]}{where}: {', '.join(parts)}" + "".join(f"; {n}" for n in self.notes)


def redact(text: str) -> str:
    """Credentials in URLs (https://user:token@host) replaced by ***."""
    return _USERINFO.sub("***@", text)
