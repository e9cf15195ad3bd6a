"""One look for every figure of the book: mplhep's ATLAS style, an honest sample label, PNG output.

The samples are Pythia 8 events through a parametric detector emulation, not ATLAS simulation, so the
figures say so ("Pythia 8 + parametric detector emulation", sqrt(s) = 13.6 TeV) instead of carrying the
"ATLAS Simulation Internal" label of the collaboration's own samples.

Figures are `matplotlib.figure.Figure` objects made without pyplot: nothing global to close,
no GUI backend needed, and a notebook shows the returned figure once. Every plotting function
of `treasure_lib.plots` calls `use()` (applied once per process) and ends with `finish()`,
which saves `<save_to>/<name>.png` when `save_to` is given.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import mplhep
import numpy as np
from matplotlib.figure import Figure

SQRT_S_TEV = 13.6  # Run 3 centre-of-mass energy shown on the figures
LABEL_TEXT = "Pythia 8 + parametric detector emulation"  # what made the samples every figure shows
DPI = 110
OVERRIDES = {
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "figure.dpi": DPI,
    "legend.fontsize": "small",
    "axes.formatter.limits": (-3, 4),
}
_applied = False
_show_when_made = False


def use(force: bool = False) -> None:
    """Apply mplhep's ATLAS style plus `OVERRIDES` to matplotlib's rcParams.

    Idempotent: the first call applies it, later ones do nothing (so settings changed after it
    survive) unless `force=True` re-applies it.
    """
    global _applied
    if _applied and not force:
        return
    mplhep.style.use("ATLAS")
    matplotlib.rcParams.update(OVERRIDES)
    _applied = True


def is_applied() -> bool:
    """Whether `use()` has set the style in this process."""
    return _applied


def figure(nrows: int = 1, ncols: int = 1, figsize=None, squeeze: bool = True, **subplots_kw):
    """(Figure, axes) from `Figure.subplots`, styled; figsize defaults to the style's size per panel."""
    use()
    fig = Figure(figsize=figsize or panel_size(ncols, nrows))
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze, **subplots_kw)


def panel_size(ncols: int = 1, nrows: int = 1) -> tuple[float, float]:
    """Figure size for a grid of panels: the style's size for one, 85% of it per panel for more."""
    use()
    width, height = matplotlib.rcParams["figure.figsize"]
    return (width * ncols * (0.85 if ncols > 1 else 1.0), height * nrows * (0.85 if nrows > 1 else 1.0))


def ratio_figure(figsize=None):
    """(Figure, (main axes, ratio axes)) sharing x, the ratio panel a third as tall."""
    use()
    fig = Figure(figsize=figsize or matplotlib.rcParams["figure.figsize"])
    main, ratio = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06})
    main.tick_params(labelbottom=False)
    return fig, (main, ratio)


def label_lines(text: str = LABEL_TEXT, com: float | None = SQRT_S_TEV, extra: str | None = None) -> list[str]:
    """The label's lines: what made the samples, then sqrt(s) (TeV) and `extra` (e.g. '$f_c$ = 0.1')."""
    second = ", ".join(s for s in (f"\u221as = {com:g} TeV" if com else None, extra) if s)
    return [text] + ([second] if second else [])


def study_label(
    ax,
    text: str = LABEL_TEXT,
    com: float | None = SQRT_S_TEV,
    extra: str | None = None,
    x: float = 0.04,
    y: float = 0.95,
) -> None:
    """The sample label in the top left corner (axes coordinates x, y): `text`, and sqrt(s) and `extra` below."""
    first, *rest = label_lines(text, com, extra)
    head = ax.text(x, y, first, transform=ax.transAxes, ha="left", va="top", fontsize="medium", fontweight="bold")
    if rest:  # one line lower, whatever the panel's height
        ax.annotate(
            rest[0],
            (x, y),
            xycoords="axes fraction",
            xytext=(0, -1.5 * head.get_fontsize()),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize="medium",
        )


def legend_below_label(ax, side: str = "right", **kwargs):
    """A legend in the upper `side` corner that starts below the sample label's two lines (`study_label` at its
    default place), so long entries never run into it, whatever the panel's height (left: where curves that rise
    to the right leave room)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.transforms import ScaledTranslation

    size = FontProperties(size="medium").get_size_in_points()  # the label's font
    drop = ScaledTranslation(0, -3.0 * size / 72, ax.figure.dpi_scale_trans)  # two lines and a gap, in inches
    x = 0.98 if side == "right" else 0.02
    return ax.legend(loc=f"upper {side}", bbox_to_anchor=(x, 0.95), bbox_transform=ax.transAxes + drop, **kwargs)


def figure_label(fig, text: str = LABEL_TEXT, com: float | None = SQRT_S_TEV, extra: str | None = None) -> None:
    """The sample label on one line above a grid of panels (where no panel has room for it)."""
    first, *rest = label_lines(text, com, extra)
    pars = fig.subplotpars
    fig.text(pars.left, pars.top + 0.04, first, ha="left", va="bottom", fontsize="large", fontweight="bold")
    if rest:
        fig.text(pars.right, pars.top + 0.04, rest[0], ha="right", va="bottom", fontsize="large")


def grid_label(fig, axes, used: int) -> None:
    """The sample label of a grid of panels of which the first `used` hold data: in the first spare slot (the spare
    slots' axes switched off), or above the grid when none is spare."""
    spare = list(np.ravel(axes))[used:]
    for ax in spare:
        ax.set_axis_off()
    if spare:
        study_label(spare[0], x=0.05, y=0.8)
    else:
        figure_label(fig)


#: the former name: every figure function still calls it, and it writes the honest label
atlas_label = study_label


#: one colour per input type on every page (Okabe-Ito, distinguishable with colour-vision deficiencies), keyed by
#: the physics names of `study.names.MODELS`: raw features black, decoded blue, tokens orange / vermilion / green
MODEL_COLOURS = {
    "raw features": "#000000",
    "decoded tokens": "#0072B2",
    "tokens, from scratch": "#E69F00",
    "tokens, fine-tuned": "#D55E00",
    "tokens, frozen backbone": "#009E73",
    "tokens, slowly fine-tuned": "#CC79A7",
    "multiplicities only": "#999999",
    "structure only": "#56B4E9",
    "codes shuffled within type": "#F0E442",
    "fixed slots, no SEP / type ids": "#882255",
    "m4l window": "#999999",
    "gradient-boosted trees, high-level variables": "#117733",
    "tokens, fine-tuned from the next-token backbone": "#332288",
    # chapter 08's anomaly scores (never on one figure with the classifiers above but these)
    "masked-token pseudo-likelihood": "#AA4499",
    "masked-token pseudo-likelihood per object": "#CC79A7",
    "next-token likelihood": "#44AA99",
    "next-token likelihood per object": "#88CCEE",
    "tokenizer reconstruction error": "#0072B2",
    "raw-feature autoencoder": "#000000",
    "supervised token classifier (reference)": "#E69F00",
    "number of objects (no model)": "#999999",
    "jet pT (no model)": "#661100",
}
_SPARE = ("#332288", "#44AA99", "#AA4499", "#DDCC77", "#88CCEE", "#661100")


_LONGEST_FIRST = sorted(MODEL_COLOURS.items(), key=lambda kv: -len(kv[0]))  # "tokens, fine-tuned" before "tokens"


def first_upper(text: str) -> str:
    """The first letter upper-cased, the rest kept ('ROC AUC', 'b vs rest AUC' -> 'B vs rest AUC'): str.capitalize
    would lower-case the rest ('Roc auc')."""
    return text[:1].upper() + text[1:]


def colour(label: str, index: int = 0) -> str:
    """The colour of a model on every figure: `MODEL_COLOURS` by its physics name (a label that starts with one,
    e.g. 'tokens, fine-tuned (10%)', shares it); other labels take spare colours by `index`. The multiplicity row
    and the m4l window share grey: they never appear on one figure (leakage table vs chapter 06)."""
    label = str(label)
    lowered = label[:1].lower() + label[1:]  # a legend entry starts upper-case (`first_upper`): the same model
    for name, value in _LONGEST_FIRST:
        if label.startswith(name) or lowered.startswith(name):
            return value
    return _SPARE[index % len(_SPARE)]


def axis_label(name: str, unit: str | None = None) -> str:
    """'name [unit]', or the name alone for a dimensionless quantity."""
    return f"{name} [{unit}]" if unit else name


def headroom(ax, factor: float = 1.35, log: bool = False) -> None:
    """Raise the top of the y range so the sample label and the legend clear the data."""
    low, high = ax.get_ylim()
    if log and low > 0 and high > 0:
        ax.set_ylim(low, low * (high / low) ** factor)
    else:
        ax.set_ylim(low, low + (high - low) * factor)


def show_when_made(on: bool = True) -> None:
    """Chapters: display every figure in the notebook as it is made (figures kept in variables show too)."""
    global _show_when_made
    _show_when_made = on


def finish(fig: Figure, save_to=None, name: str = "figure", dpi: int = DPI) -> Figure:
    """Save `<save_to>/<name>.png` (directory created; dpi 110, tight) when `save_to` is given; return fig."""
    if save_to is not None:
        out = Path(save_to)
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / f"{name}.png", dpi=dpi, bbox_inches="tight")
    if _show_when_made:
        _display_png(fig, dpi)
    return fig


def _display_png(fig: Figure, dpi: int) -> None:
    """Show the figure as a PNG output: a pyplot-free Figure has no rich display of its own (only its repr),
    whatever backend the kernel runs, so the notebook and the book would get text instead of the picture."""
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    display(Image(data=buffer.getvalue(), format="png"))


def as_series(values, labels=None) -> dict:
    """{label: array} from a dict, a list of arrays, or one array (labels default to '', '1', ...)."""
    if isinstance(values, dict):
        return {str(k): v for k, v in values.items()}
    arr = values if isinstance(values, (list, tuple)) and np.ndim(values[0]) > 0 else [values]
    labels = list(labels) if labels is not None else ([""] if len(arr) == 1 else [str(i) for i in range(len(arr))])
    if len(labels) != len(arr):
        raise ValueError(f"{len(labels)} labels for {len(arr)} series")
    return dict(zip(labels, arr))
