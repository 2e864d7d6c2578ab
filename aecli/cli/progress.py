"""Training progress on stderr: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..report import fmt

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from ..pipeline import EpochReport


class TrainingProgress:
    """A callback for ``Autoencoder.fit`` that shows each epoch to a person.

    On a terminal: a progress bar with epoch, train and validation loss, rows per second and
    ETA. Elsewhere
    (cron, pipes): a plain line every ``every`` epochs, or every epoch with ``verbose``.
    ``quiet`` shows nothing.
    """

    def __init__(self, console: Console, quiet: bool, verbose: bool, label: str = "training"):
        self.console, self.quiet, self.verbose, self.label = console, quiet, verbose, label
        self.bar: Progress | None = None
        self.task = None
        self.main, self.phase = label, ""  # the run's label, and the phase of its reports

    def __enter__(self) -> TrainingProgress:
        if not self.quiet and self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("epoch {task.completed}/{task.total}"),
                TextColumn("{task.fields[losses]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar, self.task = None, None

    def relabel(self, k: int) -> None:
        """Name the next run (e.g. each k of a sweep); its epochs start a fresh bar."""
        self.label = self.main = f"k={k}"
        self.task, self.phase = None, ""

    def __call__(self, r: EpochReport) -> None:
        if self.quiet:
            return
        if r.phase != self.phase:  # the threshold's calibration fits: a bar of their own
            self.phase, self.task = r.phase, None
            self.label = f"{self.main}, {r.phase}" if r.phase else self.main
        losses = f"train {fmt(r.train_loss)}"
        if r.val_loss is not None:
            losses += f"  val {fmt(r.val_loss)}"
        if r.rows and r.seconds > 0:  # the epoch's rate, validation and averaging included
            losses += f"  {r.rows / r.seconds:,.0f} rows/s"
        if self.bar is not None:
            if self.task is None:
                for old in self.bar.task_ids:
                    self.bar.remove_task(old)
                self.task = self.bar.add_task(self.label, total=r.epochs, losses="")
            self.bar.update(self.task, completed=r.epoch, losses=losses)
            return
        every = 1 if self.verbose else max(1, r.epochs // 10)
        if r.phase and not self.verbose:  # a log gets one line per calibration fit
            every = r.epochs + 1
        if r.epoch % every == 0 or (r.epoch == r.epochs and not r.phase) or r.epoch == 1:
            self.console.print(f"{self.label}: epoch {r.epoch}/{r.epochs}  {losses}",
                               markup=False, highlight=False)
