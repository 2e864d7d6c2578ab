"""A benchmark figure (a measured ratio against a target) and the table that prints them."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Figure:
    """One line of the table: aecli's value, the reference's, their ratio and its target.

    ``at_least`` says which way the target points: ``ratio >= target`` (a speed) or
    ``ratio <= target`` (a time, a memory growth).
    """

    name: str
    aecli: float | None
    reference: float | None
    unit: str
    ratio: float | None
    target: float | None
    at_least: bool = True
    note: str = ""
    percent: bool = False  # show the ratio as a percentage (share of a ceiling)

    @property
    def status(self) -> str:
        """PASS, MISS, SKIP (no reference this run) or INFO (no target)."""
        if self.ratio is None:
            return "SKIP"
        if self.target is None:
            return "INFO"
        ok = self.ratio >= self.target if self.at_least else self.ratio <= self.target
        return "PASS" if ok else "MISS"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        op = ">=" if self.at_least else "<="
        return f"{op} {self.target:.0%}" if self.percent else f"{op} {self.target:g}x"

    def ratio_text(self) -> str:
        if self.ratio is None:
            return "-"
        return f"{self.ratio:.0%}" if self.percent else f"{self.ratio:.2f}x"

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status}


# How a value of each unit is written; any other unit: a whole number and the unit.
_FORMATS = {"s": "{:.2f} s", "MiB": "{:.0f} MiB", "GFLOP/s": "{:.1f} GFLOP/s",
            "x PCA": "{:.3f} x PCA",  # a held-out error as a ratio to PCA's
            "MSE": "{:.4f}", "AUC": "{:.3f} AUC", "share": "{:.2%}"}


def _value(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    return _FORMATS[unit].format(x) if unit in _FORMATS else f"{x:,.0f} {unit}"


def table(figures: list[Figure]) -> str:
    """The figures as a plain-text table (it goes to logs and CI as well as terminals)."""
    head = ("figure", "aecli", "reference", "ratio", "target", "result")
    rows = [
        (f.name, _value(f.aecli, f.unit), _value(f.reference, f.unit), f.ratio_text(),
         f.target_text(), f.status)
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = {1, 2, 3, 4}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    notes = [f"  * {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(out + ([""] + notes if notes else []))
