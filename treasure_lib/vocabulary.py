"""The token vocabulary: special ids, then one contiguous id range per (tokenizer card, level).

PAD 0 (padding), CLS 1, SEP 2, MASK 3 (pretraining), EMPTY 4 (a valid position's level that has
no code: a collection with fewer levels than the layout's Q, and levels >= 1 of CLS/SEP). Codes
start at 5. Type ids: 0 for special positions, then each collection's configured id; a combined
tokenizer's range lists its `members`, and every member keeps its own type id, so a type id always
maps back to a collection (DESIGN.md, "Token vocabulary").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SPECIAL_TOKENS = {"PAD": 0, "CLS": 1, "SEP": 2, "MASK": 3, "EMPTY": 4}
PAD, CLS, SEP, MASK, EMPTY = (SPECIAL_TOKENS[k] for k in ("PAD", "CLS", "SEP", "MASK", "EMPTY"))
N_SPECIAL = len(SPECIAL_TOKENS)


@dataclass
class Vocabulary:
    """Id ranges `{"collection", "level", "start", "size", "kind", "feature", "members"}` and type ids."""

    ranges: list = field(default_factory=list)
    type_ids: dict = field(default_factory=lambda: {"special": 0})

    def add(
        self,
        collection: str,
        type_id: int,
        levels: int,
        size: int,
        kind: str = "vq",
        features: Sequence[str] | None = None,
        members: dict[str, int] | None = None,
    ) -> None:
        """Ranges for one card: `levels` levels of `size` codes. `members` (combined mode): collection -> type id."""
        if any(r["collection"] == collection for r in self.ranges):
            raise ValueError(f"vocabulary already has ranges for '{collection}'")
        start = self.size
        for q in range(levels):
            self.ranges.append(
                {
                    "collection": collection,
                    "level": q,
                    "start": start,
                    "size": int(size),
                    "kind": kind,
                    "feature": features[q] if features else None,
                    "members": list(members) if members else None,
                }
            )
            start += int(size)
        for name, tid in (members or {collection: type_id}).items():
            if tid in [v for k, v in self.type_ids.items() if k != name]:
                raise ValueError(f"type id {tid} of '{name}' is already used by another collection: {self.type_ids}")
            self.type_ids[name] = int(tid)

    @property
    def size(self) -> int:
        return max([r["start"] + r["size"] for r in self.ranges], default=N_SPECIAL)

    def cards(self) -> list[str]:
        """Card names in vocabulary order."""
        return list(dict.fromkeys(r["collection"] for r in self.ranges))

    def levels(self, card: str) -> int:
        return sum(1 for r in self.ranges if r["collection"] == card)

    def offsets(self, card: str) -> np.ndarray:
        """First id of each level of a card, [Q]."""
        rows = sorted((r for r in self.ranges if r["collection"] == card), key=lambda r: r["level"])
        if not rows:
            raise KeyError(f"'{card}' has no range in the vocabulary (cards: {', '.join(self.cards())})")
        return np.array([r["start"] for r in rows], dtype=np.int64)

    def card_of(self, collection: str) -> str:
        """The card whose codes a collection's objects carry (itself, or the combined card it is a member of)."""
        for r in self.ranges:
            if r["collection"] == collection or collection in (r["members"] or ()):
                return r["collection"]
        raise KeyError(f"collection '{collection}' has no tokens in the vocabulary")

    def collection_of_type(self, type_id: int) -> str:
        for name, tid in self.type_ids.items():
            if tid == type_id:
                return name
        raise KeyError(f"type id {type_id} belongs to no collection ({self.type_ids})")

    def lookup(self) -> dict[str, np.ndarray]:
        """Per id: `level` (-1 for specials), `start` and `size` of its range: vectorised id -> range maps."""
        level = np.full(self.size, -1, dtype=np.int64)
        start = np.zeros(self.size, dtype=np.int64)
        size = np.zeros(self.size, dtype=np.int64)
        for r in self.ranges:
            sl = slice(r["start"], r["start"] + r["size"])
            level[sl], start[sl], size[sl] = r["level"], r["start"], r["size"]
        return {"level": level, "start": start, "size": size}

    def to_json(self) -> str:
        return json.dumps(
            {"special": SPECIAL_TOKENS, "ranges": self.ranges, "type_ids": self.type_ids, "size": self.size}
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Vocabulary:
        data = json.loads(text)
        if data.get("special", {}).get("EMPTY") != EMPTY:
            raise ValueError("token file written with an older vocabulary (no EMPTY id); re-export it")
        return cls(
            ranges=[{**{"members": None, "feature": None}, **r} for r in data["ranges"]],
            type_ids=dict(data["type_ids"]),
        )


def to_global(indices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Local indices [..., Q] (-1 = padding) -> vocabulary ids (PAD where padded)."""
    return np.where(indices >= 0, indices + offsets, PAD).astype(np.int32)
