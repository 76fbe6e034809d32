"""Progress bars for long harness work (condensation phases), shared by the CLI and the table."""

from __future__ import annotations

from collections.abc import Callable


def condense_progress(disabled: bool) -> Callable[[int, str], Callable[..., None]]:
    """A tqdm bar per phase; ``update(n, loss=.., val=..)`` shows the current loss."""
    from tqdm.auto import tqdm

    def make(total: int, desc: str) -> Callable[..., None]:
        bar = tqdm(total=total, desc=desc, unit="it", disable=disabled, leave=False, dynamic_ncols=True)

        def update(n: int = 1, loss: float | None = None, val: float | None = None) -> None:
            if loss is not None:
                post = f"loss {loss:.4g}" + (f", val {100 * val:.1f}%" if val is not None else "")
                bar.set_postfix_str(post, refresh=False)
            bar.update(n)

        return update

    return make
