"""The sequence contract: `TokenizerSet`, the ordered cards of a study and how their tokens are laid out.

It knows the vocabulary (special ids, one id range per card and level), the type ids, the levels
and the slot layout, and converts both ways without a Python loop per event:

- an H5 `Batch` -> token sequences, grouped `[L][Q]` or flat `[L']` (`encode` then `assemble`);
- token sequences -> each card's local indices (`split`) -> decoded physical features (`decode`);
- an H5 `Batch` -> scaled object features at the grouped positions (`features`: the raw baseline).

Sequence: `[CLS]` then the collections in `sequence.order`, each object collection followed by
`[SEP]`; layouts and the EMPTY id are specified in DESIGN.md ("Sequence layouts").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import DataParams, ExportParams, SequenceParams, StudyParams, TokenizerParams
from .errors import ConfigError, InputFileError
from .vocabulary import CLS, EMPTY, PAD, SEP, Vocabulary

LAYOUTS, SLOTS = ("grouped", "flat"), ("compact", "fixed")


@dataclass(frozen=True)
class Layout:
    tokens: str = "grouped"  # grouped [L][Q] | flat [L']
    slots: str = "compact"  # compact (padding at the end) | fixed (max_objects positions per collection)
    sep: bool = True  # [SEP] after each object collection
    type_ids: bool = True  # false: every type id is 0

    def __post_init__(self):
        if self.tokens not in LAYOUTS or self.slots not in SLOTS:
            raise ConfigError(
                f"token layout must be one of {LAYOUTS} with slots one of {SLOTS}; got {self.tokens}/{self.slots}"
            )

    @classmethod
    def from_sequence(cls, sequence: SequenceParams, tokens: str) -> Layout:
        """`sequence`'s slots, separators and type ids with the token layout `tokens` (`export.layout`)."""
        return cls(tokens, sequence.slots, sequence.sep, sequence.type_ids)


@dataclass(frozen=True)
class Group:
    """One collection's place in the sequence: its card, type id, object slots and levels."""

    name: str
    card: str
    type_id: int
    slots: int
    levels: int
    scalar: bool


@dataclass
class Sequences:
    """Token rows: `tokens` int32 grouped [n, L, Q] or flat [n, L']; `type_ids` int32 and `mask` bool per position."""

    tokens: np.ndarray
    type_ids: np.ndarray
    mask: np.ndarray


class TokenizerSet:
    """The ordered cards of a study, their vocabulary and slot layout (DESIGN.md, "Sequence layouts")."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        groups: list[Group],
        layout: Layout,
        tokenizers: Mapping | None = None,
        cards: Mapping | None = None,
    ):
        self.vocabulary = vocabulary
        self.groups = list(groups)
        self.layout = layout
        self.tokenizers = dict(tokenizers or {})  # card name -> Tokenizer (None when read from metadata only)
        self.cards = dict(cards or {})  # card name -> {"hash", "path"}
        self.levels = max(g.levels for g in self.groups)

    # ------------------------------------------------------------------ sizes
    def _sep(self, g: Group) -> int:
        return int(self.layout.sep and not g.scalar)

    @property
    def length(self) -> int:
        """Positions per row: grouped layout (objects) or flat (tokens)."""
        per = (lambda g: g.slots) if self.layout.tokens == "grouped" else (lambda g: g.slots * g.levels)
        return 1 + sum(per(g) + self._sep(g) for g in self.groups)

    @property
    def object_length(self) -> int:
        """Positions per row in the grouped layout (where raw features live)."""
        return 1 + sum(g.slots + self._sep(g) for g in self.groups)

    def position_collections(self, grouped: bool = True) -> np.ndarray:
        """[L] of a fixed-slot layout: the collection each position belongs to ("" for CLS and SEP), the same in
        every row (a compact layout has no such map: its positions depend on the row)."""
        per = (lambda g: g.slots) if grouped else (lambda g: g.slots * g.levels)
        names = [""]
        for g in self.groups:
            names += [g.name] * per(g) + [""] * self._sep(g)
        return np.array(names)

    def groups_of(self, card: str) -> list[Group]:
        return [g for g in self.groups if g.card == card]

    # ------------------------------------------------------------------ H5 -> local indices
    def _inputs(self, batch, group: Group) -> tuple[np.ndarray, np.ndarray]:
        """(physical features [n, m, F] in the card's feature order, valid [n, m]) of one group."""
        tok = self.tokenizers[group.card]
        if group.name not in batch.collections:
            raise InputFileError(
                f"{batch.source_file}: the sequence needs collection '{group.name}', which the data "
                f"set does not read (data.collections)"
            )
        oa = batch[group.name]
        names = list(oa.names)
        if "type" in tok.features and "type" not in names:  # combined card: the type id is a feature
            feats = np.concatenate([oa.features, np.full(oa.mask.shape + (1,), group.type_id, np.float32)], -1)
            names.append("type")
        else:
            feats = oa.features
        cols = tok.check_features(names, f"{batch.source_file}: collection '{group.name}'")
        return feats[..., cols], oa.mask

    def card_inputs(self, batch, card: str) -> tuple[np.ndarray, np.ndarray]:
        """(physical features [n, M, F], valid [n, M]) of all the groups a card tokenizes, side by side."""
        parts = [self._inputs(batch, g) for g in self.groups_of(card)]
        return np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts], axis=1)

    def encode(self, batch, batch_size: int = 4096) -> dict[str, np.ndarray]:
        """Local code indices per group {collection: [n, slots, levels]} (-1 where no object)."""
        out = {}
        for card, tok in self.tokenizers.items():
            groups = self.groups_of(card)
            parts = [self._inputs(batch, g) for g in groups]
            feats, mask = self.card_inputs(batch, card)
            idx = np.empty(mask.shape + (tok.num_quantizers,), dtype=np.int32)  # codes < 2^31; half the bytes to move
            for s in range(0, len(mask), batch_size):  # in-context encoders see all of a card's groups at once
                idx[s : s + batch_size] = tok.encode(feats[s : s + batch_size], mask[s : s + batch_size])
            start = 0
            for g, (_, m) in zip(groups, parts):
                out[g.name] = idx[:, start : start + m.shape[1]]
                start += m.shape[1]
        return out

    # ------------------------------------------------------------------ local indices -> sequences
    def assemble(self, local: Mapping[str, np.ndarray]) -> Sequences:
        """Local indices per group -> token rows in this set's layout (vectorised over rows)."""
        return self._assemble(local, self.layout.tokens == "grouped")[0]

    def _assemble(self, local: Mapping[str, np.ndarray], grouped: bool, want_positions: bool = False):
        """(token rows, {group: (rows, slots, positions) of its valid objects}) for either layout.

        Each group is one scatter through linear indices (row * L + position) into the flattened
        output, moving whole [Q] token groups as single 4Q-byte items; the mask is read off the
        tokens afterwards (a valid position never holds PAD). No loop over rows or objects.
        """
        n = len(next(iter(local.values())))
        L, Q = (self.object_length if grouped else self.length), self.levels
        width = Q if grouped else 1
        item = np.dtype((np.void, 4 * width))
        tokens = np.zeros((n, L, width), dtype=np.int32)  # PAD is 0
        types = np.zeros((n, L), dtype=np.int32)
        slots = tokens.view(item).reshape(-1)  # one item per position
        flat_types = types.reshape(-1)
        index = np.int32 if n * L < 2**31 else np.int64  # position arithmetic in the narrowest safe type
        row_base = np.arange(n, dtype=index) * L
        cls, sep = (np.array([t] + [EMPTY] * (width - 1), np.int32).view(item) for t in (CLS, SEP))
        slots[row_base] = cls
        start = np.ones(n, dtype=index)
        placed = {}
        for g in self.groups:
            idx = local[g.name]
            v = idx[..., 0] >= 0
            m, q = v.shape[1], g.levels
            sel = np.flatnonzero(v)  # valid objects, row-major
            rows = (
                np.ascontiguousarray(idx, dtype=np.int32).reshape(n * m, q).view(np.dtype((np.void, 4 * q))).reshape(-1)
            )
            values = np.take(rows, sel).view(np.int32).reshape(-1, q)  # [Nv, q], one item per object
            per_object = 1 if grouped else q
            # compact: an object's place among the valid ones of its row (any input order); fixed: its slot
            rank = (
                np.cumsum(v, axis=1, dtype=index) - 1 if self.layout.slots == "compact" else np.arange(m, dtype=index)
            )
            first = (row_base + start)[:, None] + per_object * rank  # each slot's first position, dense
            lin = np.take(first.reshape(-1), sel)
            type_id = g.type_id if self.layout.type_ids else 0
            if grouped:
                ids = np.empty((len(sel), Q), np.int32)
                np.add(values, self.vocabulary.offsets(g.card).astype(np.int32), out=ids[:, :q])
                ids[:, q:] = EMPTY
                slots[lin] = ids.view(item).reshape(-1)
                flat_types[lin] = type_id
                if want_positions:
                    placed[g.name] = (sel // m, sel % m, lin - np.take(row_base, sel // m))
            else:  # an object's levels are consecutive positions: one scatter per level
                offsets = self.vocabulary.offsets(g.card).astype(np.int32)
                for level in range(q):
                    at = lin + level
                    slots[at] = (values[:, level] + offsets[level]).view(item)
                    flat_types[at] = type_id
            start += np.asarray((rank[:, -1] + 1 if self.layout.slots == "compact" else m) * per_object, dtype=index)
            if self._sep(g):
                slots[row_base + start] = sep
                start += 1
        mask = tokens[..., 0] != PAD
        return Sequences(tokens if grouped else tokens[..., 0], types, mask), placed

    def to_sequences(self, batch, batch_size: int = 4096) -> tuple[Sequences, dict[str, np.ndarray]]:
        """An H5 batch -> (token rows, local indices per group)."""
        local = self.encode(batch, batch_size)
        return self.assemble(local), local

    # ------------------------------------------------------------------ sequences -> local indices -> features
    def split(self, seq: Sequences) -> dict[str, np.ndarray]:
        """Token rows -> each card's local indices [n, M, q] in sequence order (-1 padded): the inverse of assemble."""
        grouped = seq.tokens.ndim == 3
        level0 = seq.tokens[..., 0] if grouped else seq.tokens
        out = {}
        for card in self.vocabulary.cards():
            offsets = self.vocabulary.offsets(card)
            size = next(r["size"] for r in self.vocabulary.ranges if r["collection"] == card)
            q = len(offsets)
            sel = (level0 >= offsets[0]) & (level0 < offsets[0] + size) & seq.mask
            width = sum(g.slots for g in self.groups_of(card))
            order = np.argsort(~sel, axis=1, kind="stable")[:, :width]
            ok = np.take_along_axis(sel, order, axis=1)
            if grouped:
                got = np.take_along_axis(seq.tokens, order[..., None], axis=1)[..., :q]
            else:
                p = np.minimum(order[..., None] + np.arange(q), seq.tokens.shape[1] - 1)
                got = np.take_along_axis(seq.tokens[:, :, None], p.reshape(len(p), -1, 1), axis=1).reshape(p.shape)
            out[card] = np.where(ok[..., None], got - offsets, -1).astype(np.int64)
        return out

    def decode(self, seq: Sequences, levels: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Token rows -> {card: (physical features [n, M, F], valid [n, M])} through each card's decoder."""
        out = {}
        for card, idx in self.split(seq).items():
            tok = self._card(card)
            out[card] = (tok.decode(idx, levels=levels), idx[..., 0] >= 0)
        return out

    def _card(self, card: str):
        if self.tokenizers.get(card) is None:
            raise ConfigError(f"decoding needs the tokenizer card '{card}'; open the set with load_cards=True")
        return self.tokenizers[card]

    # ------------------------------------------------------------------ raw features (the tokens-vs-raw baseline)
    def feature_width(self) -> int:
        return max(self._card(c).scaler_width() for c in self.tokenizers)

    def features(self, batch) -> Sequences:
        """Scaled object features (continuous, then one-hot categories) at the grouped positions:
        tokens -> [n, L, F]."""
        return self._place_features(batch, {g.name: self._inputs(batch, g) for g in self.groups})

    def decoded_features(self, batch, local: Mapping[str, np.ndarray]) -> Sequences:
        """Like `features`, from the tokens turned back into physics quantities (each card's decoder): the
        'decoded features' input of the cost table, which separates what quantisation loses from what the model does."""
        inputs = {}
        for card in self.tokenizers:
            groups = self.groups_of(card)
            idx = np.concatenate([local[g.name] for g in groups], axis=1).astype(np.int64)
            decoded = self._card(card).decode(idx)  # in-context decoders see all of a card's groups at once
            start = 0
            for g in groups:
                m = local[g.name].shape[1]
                inputs[g.name] = (decoded[:, start : start + m], local[g.name][:, :, 0] >= 0)
                start += m
        return self._place_features(batch, inputs)

    def _place_features(self, batch, inputs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Sequences:
        payload, local = {}, {}
        for g in self.groups:
            feats, valid = inputs[g.name]
            order = np.argsort(~valid, axis=1, kind="stable")  # valid first, as assemble places them
            payload[g.name] = np.take_along_axis(
                self._card(g.card).scaled_inputs(feats, valid), order[..., None], axis=1
            )
            local[g.name] = np.repeat(
                np.where(np.take_along_axis(valid, order, axis=1), 0, -1)[..., None], g.levels, -1
            )
        seq, placed = self._assemble(local, grouped=True, want_positions=True)
        out = np.zeros(seq.mask.shape + (self.feature_width(),), dtype=np.float32)
        for g in self.groups:
            r, j, p = placed[g.name]
            out[r, p, : payload[g.name].shape[-1]] = payload[g.name][r, j]
        return Sequences(out, seq.type_ids, seq.mask)

    # ------------------------------------------------------------------ metadata (token Parquet schema)
    def metadata(self) -> dict[str, str]:
        layout = {
            **asdict(self.layout),
            "levels": self.levels,
            "length": self.length,
            "object_length": self.object_length,
            "groups": [asdict(g) for g in self.groups],
        }
        return {"vocabulary": self.vocabulary.to_json(), "layout": json.dumps(layout), "cards": json.dumps(self.cards)}

    @classmethod
    def from_metadata(
        cls,
        meta: Mapping[str, str],
        where: str = "",
        load_cards: bool = False,
        base: Path | None = None,
        device: str = "cpu",
    ) -> TokenizerSet:
        try:
            vocab = Vocabulary.from_json(meta["vocabulary"])
            layout_data = json.loads(meta["layout"])
            cards = json.loads(meta["cards"])
        except (KeyError, ValueError) as exc:
            raise InputFileError(f"{where}: not a TREASURE token file of this version ({exc})") from None
        groups = [Group(**g) for g in layout_data.pop("groups")]
        layout = Layout(**{k: layout_data[k] for k in ("tokens", "slots", "sep", "type_ids")})
        tokenizers = {}
        if load_cards:
            from .tokenizers.card import card_hash, load

            for name, info in cards.items():
                path = (base / info["path"]) if base is not None else Path(info["path"])
                if not (path / "card.json").is_file():
                    raise InputFileError(f"{where}: its tokenizer card '{name}' is not at {path} (moved or deleted?)")
                if card_hash(path) != info["hash"]:
                    raise InputFileError(
                        f"{where}: the card at {path} is not the one the tokens were made with "
                        f"(hash {card_hash(path)} != {info['hash']}); re-export"
                    )
                tokenizers[name] = load(path, device=device)
        return cls(vocab, groups, layout, tokenizers, cards)

    @classmethod
    def from_params(
        cls,
        study: StudyParams,
        data: DataParams,
        tokenizer: TokenizerParams,
        export: ExportParams,
        sequence: SequenceParams,
        device: str = "cpu",
        backend: str | None = None,
        cards_dir: str | Path | None = None,
        only: list[str] | None = None,
    ) -> TokenizerSet:
        """Exactly the cards the params sections name (tokenizer.collections and mode), in `sequence.order`, from
        `cards_dir`, else `export.cards_dir`, else the study's tokenizer folder.

        A missing card is an error; cards lying in the folder that the params do not name are ignored.
        `only` restricts the set to some cards (`separate` mode writes one set per card).
        """
        from .object_collections import from_data
        from .tokenizers.card import card_hash, load
        from .tokenizers.train import COMBINED, expected_cards, tokenizer_dir

        root = Path(cards_dir or export.cards_dir or tokenizer_dir(study, tokenizer))
        names = [n for n in expected_cards(data, tokenizer) if only is None or n in only]
        missing = [n for n in names if not (root / n / "card" / "card.json").is_file()]
        if missing:
            raise InputFileError(
                f"{root}: no tokenizer card for {missing} (expected <name>/card/card.json for "
                f"tokenizer.collections in mode '{tokenizer.mode}'); run "
                f"`treasure train-tokenizer` first"
            )
        backend = backend or export.backend
        tokenizers = {n: load(root / n / "card", device=device, backend=backend) for n in names}
        collections = from_data(data)
        card_of = {}
        for name, tok in tokenizers.items():
            for member in tok.collection.get("members") or [name]:
                card_of[member] = name
        order = sequence.order or [c for c in collections if c in card_of]
        unknown = [c for c in order if c not in card_of]
        absent = [c for c in card_of if c not in order]
        if unknown or absent or len(set(order)) != len(order):
            raise ConfigError(
                f"sequence.order {order} must list each tokenized collection once: "
                f"{sorted(card_of)} (not tokenized: {unknown}; missing: {absent})"
            )
        if only is not None:
            order = [c for c in order if c in card_of]
        vocab = Vocabulary()
        for card in dict.fromkeys(card_of[c] for c in order):
            tok = tokenizers[card]
            kind = "binned" if tok.kind == "binning" else tok.kind
            members = tok.collection.get("member_type_ids") if card == COMBINED else None
            vocab.add(
                card,
                tok.collection["type_id"],
                tok.num_quantizers,
                tok.codebook_size,
                kind,
                tok.level_features if tok.kind == "binning" else None,
                members,
            )
        groups = [
            Group(
                c,
                card_of[c],
                collections[c].type_id,
                collections[c].max_objects,
                tokenizers[card_of[c]].num_quantizers,
                collections[c].is_scalar,
            )
            for c in order
        ]
        cards = {n: {"hash": card_hash(root / n / "card"), "path": str((root / n / "card").resolve())} for n in names}
        return cls(vocab, groups, Layout.from_sequence(sequence, export.layout), tokenizers, cards)
