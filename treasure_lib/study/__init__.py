"""A study's steps for the chapters: stages (data, cards, tokens, backbone, classifiers), one report per chapter
(data, tokenization, codebook health, leakage, pretraining, classification, generalisation, anomaly
detection), models trained with
several seeds, and the wording of their verdicts. Chapters call these and show the results; the analyses
themselves live in `diagnostics`, `metrics` and `training`."""

from importlib import import_module

_MODULES = (
    "data",
    "generalisation",
    "leakage",
    "stages",
    "seeds",
    "classification",
    "wording",
    "names",
    "tokenization",
    "codebook_health",
    "pretraining",
    "history",
    "display",
    "report",
    "held_out",
    "anomaly",
    "anomaly_report",
    "objectives",
    "generated",
)
__all__ = list(_MODULES)


def __getattr__(name: str):
    """Chapter modules load on first use (a chapter imports only what it shows)."""
    if name in _MODULES:
        module = import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
