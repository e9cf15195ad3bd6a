"""Rules that tie params keys together, or bound a value beyond its type: checked with the params (`config.validate`),
so a combination that would crash a training an hour in, or write outside `runs/`, is one line before anything
runs or is written.

Each rule names the key(s) and what was expected. The schema (`schema.py`) checks one key at a time; these check
what one key cannot: `model.d_model` against `model.n_heads`, a rate against [0, 1], `devices` against the forms
Lightning accepts, a run name against the folder it names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ConfigError
from . import get_dotted

TRAINING_SECTIONS = ("tokenizer.train", "pretrain.train", "classify.train")
#: Probabilities and fractions: closed interval [0, 1] unless the rule says otherwise.
RATES = (
    "model.dropout",
    "model.level_dropout",
    "classify.head_dropout",
    "pretrain.p_mask",
    "pretrain.p_random",
    "classify.f_c",
    "classify.f_tau",
    "data.split.train",
    "data.split.val",
    "data.split.test",
    "anomaly.signal_split.train",
    "anomaly.signal_split.val",
    "anomaly.signal_split.test",
    "anomaly.supervised_sm_fraction",
)


def check(params: Mapping) -> None:
    """Raise ConfigError (one line naming the keys) for the first rule the resolved `params` break."""
    for problem in problems(params):
        raise ConfigError(problem)


def problems(params: Mapping) -> Iterator[str]:
    yield from _names(params)
    for section in TRAINING_SECTIONS:
        devices = get_dotted(params, f"{section}.devices")
        if not _devices_ok(devices):
            yield (
                f"key '{section}.devices' must be a number of devices >= 1 (or -1), a non-empty list of device "
                f"ids, or 'auto'; got {devices!r}"
            )
    yield from _rates(params)
    yield from _model(params)
    yield from _fractions(params)
    yield from _held_out(params)


def _names(params: Mapping) -> Iterator[str]:
    name = get_dotted(params, "study.name")
    if name is not None and not plain_name(name):
        yield (
            f"key 'study.name' must be a plain folder name (no '/' or '\\', not "
            f"starting with '.'): the run folder is runs/<kind>/<name>; got {name!r}"
        )


def plain_name(name: Any) -> bool:
    """A name that stays one folder inside its parent: no separators, not '.', '..' or hidden."""
    return (
        isinstance(name, str)
        and bool(name)
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and not name.startswith(".")
        and name.strip() == name
    )


def _devices_ok(devices: Any) -> bool:
    if devices == "auto":
        return True
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return devices >= 1 or devices == -1
    if isinstance(devices, str):
        return devices.strip().lstrip("-").isdigit() and (int(devices) >= 1 or int(devices) == -1)
    if isinstance(devices, list):
        ids = [d for d in devices if isinstance(d, int) and not isinstance(d, bool) and d >= 0]
        return bool(devices) and len(ids) == len(devices) and len(set(ids)) == len(ids)
    return False


def _rates(params: Mapping) -> Iterator[str]:
    for key in RATES:
        value = get_dotted(params, key)
        if value is not None and not 0.0 <= value <= 1.0:
            yield f"key '{key}' is a probability or fraction: it must lie in [0, 1]; got {value!r}"
    mask_rate = get_dotted(params, "pretrain.mask_rate")
    if mask_rate is not None and not 0.0 < mask_rate <= 1.0:
        yield (
            f"key 'pretrain.mask_rate' is the fraction of positions to predict: it must lie in (0, 1]; "
            f"got {mask_rate!r}"
        )
    p_mask, p_random = get_dotted(params, "pretrain.p_mask"), get_dotted(params, "pretrain.p_random")
    if p_mask is not None and p_random is not None and p_mask + p_random > 1.0:
        yield (
            f"keys 'pretrain.p_mask' + 'pretrain.p_random' share the selected positions: their sum must be <= 1; "
            f"got {p_mask} + {p_random}"
        )
    f_c, f_tau = get_dotted(params, "classify.f_c"), get_dotted(params, "classify.f_tau")
    if f_c is not None and f_tau is not None and f_c + f_tau > 1.0:
        yield (
            f"keys 'classify.f_c' + 'classify.f_tau' must be <= 1 (the light fraction is the rest); got {f_c} + {f_tau}"
        )
    margin = get_dotted(params, "classify.convergence_margin")
    if margin is not None and not 0.0 <= margin < 1.0:
        yield f"key 'classify.convergence_margin' must lie in [0, 1); got {margin!r}"
    split = get_dotted(params, "data.split") or {}
    fractions = [split.get(k) for k in ("train", "val", "test")]
    if all(isinstance(f, (int, float)) for f in fractions) and abs(sum(fractions) - 1.0) > 1e-6:
        yield (
            f"keys 'data.split.train', '.val' and '.test' must sum to 1; got {fractions[0]} + {fractions[1]} + "
            f"{fractions[2]} = {sum(fractions):g}"
        )


def _model(params: Mapping) -> Iterator[str]:
    d_model, n_heads = get_dotted(params, "model.d_model"), get_dotted(params, "model.n_heads")
    if d_model and n_heads and d_model % n_heads:
        yield (
            f"key 'model.d_model' ({d_model}) must be divisible by 'model.n_heads' ({n_heads}): each head "
            f"attends over d_model / n_heads dimensions"
        )
    groups = get_dotted(params, "model.group_attention_groups")
    if get_dotted(params, "model.group_attention") and d_model and groups and d_model % groups:
        yield (
            f"key 'model.d_model' ({d_model}) must be divisible by 'model.group_attention_groups' ({groups}) "
            f"with model.group_attention"
        )


def _fractions(params: Mapping) -> Iterator[str]:
    fraction = get_dotted(params, "classify.label_fraction")
    if fraction is not None and not 0.0 < fraction <= 1.0:
        yield f"key 'classify.label_fraction' must lie in (0, 1] (1: every label); got {fraction!r}"
    for i, value in enumerate(get_dotted(params, "classify.label_fractions") or []):
        if not 0.0 < value < 1.0:
            yield (
                f"key 'classify.label_fractions[{i}]' must lie in (0, 1): the curve's points below all labels; "
                f"got {value!r}"
            )


def _held_out(params: Mapping) -> Iterator[str]:
    """The anomaly chapter's signals are held out: a process the study also generates as a standard-model sample
    would enter tokenizer training and pretraining, and the score would be judged on what the backbone saw."""
    signals = get_dotted(params, "anomaly.signals") or {}
    shared = sorted(set(signals) & set(get_dotted(params, "generate.samples") or {}))
    if shared:
        yield (
            f"key 'anomaly.signals' names {shared}, which generate.samples also lists: a signal must be held out "
            f"of the standard-model samples the tokenizers and the backbone learn from"
        )
    for name, events in signals.items():
        if not isinstance(events, int) or isinstance(events, bool) or events < 1:
            yield f"key 'anomaly.signals.{name}' must be a number of events to generate (>= 1); got {events!r}"
    seeds = get_dotted(params, "anomaly.seeds") or []
    if len(set(seeds)) != len(seeds):
        yield f"key 'anomaly.seeds' lists a seed twice: {seeds}"
