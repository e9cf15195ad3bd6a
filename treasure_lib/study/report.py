"""What a chapter shows (`ChapterReport`: paragraphs, tables, captions, figure arrays, metrics) and `show`, which puts
Markdown on a notebook page. Numbers and tables become text through `treasure_lib.formatting`, the one rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..formatting import markdown_table


@dataclass
class ChapterReport:
    """What a chapter shows, computed by the library: its paragraphs, its tables (rows of display dicts, each with
    a caption), the arrays its figures need (keyword arguments of a `treasure_lib.plots` function, file name
    included) and the metrics it logged. The chapter only puts them on the page."""

    text: dict[str, str] = field(default_factory=dict)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    figures: dict[str, dict] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> str:
        """One table as Markdown, its caption above it."""
        caption = self.captions.get(name, "")
        return (caption + "\n\n" if caption else "") + markdown_table(self.tables[name])


def show(text: str) -> None:
    """Display Markdown in a notebook (print outside one)."""
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover
        print(text)
