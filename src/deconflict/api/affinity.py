"""Pinning the server's processes to CPUs (``deconflict serve --cpus``), on Linux.

A Python process runs one thread at a time (the interpreter's lock). The server's threads hand that lock to
each other several times a write: the event loop to a write thread and back, and around every SQLite
call. When the threads sit on different cores, each hand-over wakes the other core and moves the
interpreter's state between caches. With the whole process on one CPU the same work took less CPU
(measured on 2 cores, ``bench/hotline.py``, unpinned and pinned in one run: 1.65-2.48 ms of server CPU a
hotline message against 2.30-3.43 ms, 1.4-1.5x the messages a second; notices, heavier, 1.1x the notices
a second for about the same CPU).

The cost: what runs on several cores at once inside the process shares its CPU too (the tactical check's
threads over many live tracks), and the kernel no longer moves the process off a CPU that other work keeps
busy. So it is asked for, never assumed: one CPU per process, chosen by whoever runs the machine.

With ``--workers N`` each worker takes one CPU of the list for itself when it starts: the first no live
sibling (another worker of the same supervisor) is pinned to, else the one the fewest share. Workers
choose one at a time (a lock file beside the supervisor's others), so two starting together never pick
the same CPU; a worker that replaces one that died takes the CPU it left.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections import Counter
from pathlib import Path

from deconflict.errors import InvalidInput

__all__ = ["lock_path", "parse_cpus", "pin", "pin_worker", "pinned_to"]


def parse_cpus(text: str) -> list[int]:
    """The CPUs a list names (``1``, ``0,1``, ``2-3``), in its order, each once; each must be one this process
    may run on.

    Raises:
        InvalidInput: not a list of CPU numbers, or a CPU this process may not use (the message names it and
            says which it may use), or pinning is not possible on this system.

    >>> parse_cpus("0")
    [0]
    """
    if not hasattr(os, "sched_setaffinity"):
        raise InvalidInput("--cpus: this system cannot pin a process to CPUs (Linux can)", field="cpus")
    allowed = sorted(os.sched_getaffinity(0))
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise InvalidInput(
                f"--cpus: {part or 'an empty item'!r} is not a CPU number or a range like 2-3 "
                f"(give for example 1, or 0,1); this machine's are {_ranges(allowed)}",
                field="cpus",
            )
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise InvalidInput(f"--cpus: the range {part} runs backwards; write {high}-{low}", field="cpus")
        for cpu in range(low, high + 1):
            if cpu not in allowed:
                raise InvalidInput(
                    f"--cpus: CPU {cpu} is not one this process may run on; it may use {_ranges(allowed)}",
                    field="cpus",
                )
            if cpu not in cpus:
                cpus.append(cpu)
    return cpus


def pin(cpus: set[int] | list[int]) -> None:
    """Every thread of this process, and the threads it starts later, on ``cpus`` only."""
    mask = set(cpus)
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), mask)
        except ProcessLookupError:  # that thread has just ended
            continue


def pinned_to(pid: int) -> set[int] | None:
    """The CPUs process ``pid`` may run on (None: it has ended)."""
    try:
        return set(os.sched_getaffinity(pid))
    except (ProcessLookupError, PermissionError):
        return None


def lock_path(supervisor: int) -> Path:
    """The lock file the workers of supervisor ``supervisor`` take turns on to choose their CPUs."""
    return Path(tempfile.gettempdir()) / f"deconflict-cpus-{supervisor}.lock"


def pin_worker(cpus: list[int]) -> int:
    """Pin this worker to one CPU of ``cpus``: the first that no live sibling is pinned to alone, else the
    one the fewest siblings share. Returns it."""
    parent = os.getppid()
    with open(lock_path(parent), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, after this worker has pinned itself
        taken: Counter[int] = Counter()
        for sibling in _children(parent):
            if sibling == os.getpid():
                continue
            mask = pinned_to(sibling)
            if mask is not None and len(mask) == 1:
                taken.update(mask)
        cpu = min(cpus, key=lambda c: (taken[c], cpus.index(c)))
        pin({cpu})
    return cpu


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.name))
    return found


def _ranges(cpus: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    runs: list[list[int]] = []
    for cpu in cpus:
        if runs and runs[-1][1] == cpu - 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
