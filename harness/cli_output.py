"""What `harness` commands print while and after they train: the progress bar and the
per-seed table of an evaluation record (``harness eval``, ``harness rank``)."""

from __future__ import annotations

import sys


def progress_factory(disabled: bool, label: str, epochs_per_run: int | None):
    """``progress(total_epochs, strategy)`` for :func:`harness.engine.evaluate.evaluate`: a tqdm
    bar (unless ``disabled``) that also says which run of ``epochs_per_run`` epochs it is in
    (None: not known to the caller, not said)."""
    from tqdm.auto import tqdm

    def make(total: int, strategy: str):
        bar = tqdm(
            total=total,
            desc=f"{label} [{strategy}]",
            unit="ep",
            disable=disabled,
            leave=False,
            dynamic_ncols=True,
        )
        if epochs_per_run is None:
            return bar.update
        runs = max(1, total // epochs_per_run)

        def update(n: int) -> None:
            bar.update(n)
            bar.set_postfix_str(f"run {min(runs, bar.n // epochs_per_run + 1)}/{runs}", refresh=False)

        return update

    return make


def print_eval_table(result) -> None:
    """The per-seed table of an :class:`~dcregistry.records.EvalRecord` on stderr."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=f"{result.artifact.get('ref', '?')} under {result.protocol_id}")
    table.add_column("seed", justify="right")
    table.add_column("accuracy %", justify="right")
    base = result.baseline
    if base:
        table.add_column("random real %", justify="right")
    for i, (seed, acc) in enumerate(zip(result.seeds, result.accuracies, strict=True)):
        row = [str(seed), f"{100 * acc:.2f}"]
        if base:
            row.append(f"{100 * base.accuracies[i]:.2f}")
        table.add_row(*row)
    table.add_row(
        "mean ± std",
        result.accuracy_text(),
        *([f"{100 * base.mean:.2f} ± {100 * base.std:.2f}"] if base else []),
    )
    console.print(table)
    if result.rank is not None:
        from .engine.rank import rank_lines

        for line in rank_lines(result.rank):
            print(line, file=sys.stderr)
    console.print(
        f"device {result.device}, strategy {result.strategy.get('name', '?')}, "
        f"{result.wall_time_s or 0:.1f} s, clipped: {result.clipped}"
    )
