"""Worker processes that do not outlive their parent.

A ``multiprocessing`` pool worker whose parent is killed (SIGKILL, an OOM kill, a timeout) waits
for work forever: with the spawn context every worker holds the task pipe's write end too, so no
EOF arrives. :func:`exit_with_parent` (a pool ``initializer``) makes it exit within a second.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["exit_with_parent"]


def exit_with_parent(parent_pid: int, period_s: float = 1.0) -> None:
    """Exit this process soon after ``parent_pid`` is no longer its parent (it died)."""

    def watch() -> None:
        while True:
            time.sleep(period_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
