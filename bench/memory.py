"""Peak memory of a process tree, as PSS (proportional set size: shared pages split among the
processes that share them, so a tree's PSS adds up to what it really takes), from /proc."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants."""
    tree, pids, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    return pids


def pss_bytes(pid: int) -> int:
    """A process's PSS (0 when it has ended or cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def process_name(pid: int) -> str:
    """What a process is, in a few words: Ray's title for its workers (``ray::TrainController``),
    else the program and its first argument."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return "?"
    if words[0].startswith("ray::"):
        return words[0].split()[0].split(".")[0]
    return " ".join(Path(w).name if "/" in w else w for w in words[:2])


class PeakPss:
    """Samples the PSS of a process tree in a thread: ``peak`` (bytes), ``processes``, and
    ``by_process`` (GB per kind of process at the peak, largest first)."""

    def __init__(self, root: int = os.getpid(), interval_s: float = 0.5) -> None:
        self.root, self.interval_s = root, interval_s
        self.peak = 0
        self.processes = 0
        self.by_process: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            sizes = {pid: pss_bytes(pid) for pid in tree_pids(self.root)}
            total = sum(sizes.values())
            if total > self.peak:
                self.peak, self.processes = total, len(sizes)
                kinds: dict[str, float] = {}
                for pid, size in sizes.items():
                    name = process_name(pid)
                    kinds[name] = kinds.get(name, 0.0) + size / 1e9
                self.by_process = dict(sorted(kinds.items(), key=lambda kv: -kv[1]))

    def __enter__(self) -> PeakPss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
