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
choose one at a time, holding a lock that is a name in Linux's abstract socket namespace (no file to leave
behind, to be swapped for a link or to be refused by another user's permissions; the kernel frees it when
its holder dies), so two starting together never pick the same CPU; a worker that replaces one that died
takes the CPU it left. A worker that cannot pin itself (the lock held by someone else for too long, the
kernel refusing) says so in the log and serves unpinned: pinning saves CPU, it never stops the service.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deconflict.errors import InvalidInput

__all__ = ["LOCK_WAIT_S", "choosing", "parse_cpus", "pin", "pin_worker", "pinned_to"]

log = logging.getLogger("deconflict.serve")

LOCK_WAIT_S = 10.0
"""How long a worker waits for its siblings to have chosen their CPUs before it chooses without them."""
_CPU_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?")


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
        found = _CPU_ITEM.fullmatch(part)
        if found is None:
            what = f"{part!r} is not" if part else "an empty item in the list is not"
            raise InvalidInput(
                f"--cpus: {what} a CPU number or a range like 2-3 (give for example 1, or 0,1); "
                f"this process may use {_ranges(allowed)}",
                field="cpus",
            )
        low = int(found.group(1))
        high = int(found.group(2)) if found.group(2) is not None else low
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


@contextmanager
def choosing(supervisor: int, wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
    """Held while a worker of ``supervisor`` chooses its CPU: a name bound in the abstract socket namespace,
    which one process at a time can hold. Yields whether it was taken (False: the wait ran out)."""
    name = f"\0deconflict-cpus-{supervisor}"
    deadline = time.monotonic() + wait_s
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        while True:
            try:
                held.bind(name)
                break
            except OSError:  # a sibling is choosing (or something else holds the name): wait a little
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.01)
        yield True
    finally:
        held.close()


def pin_worker(cpus: list[int]) -> int | None:
    """Pin this worker to one CPU of ``cpus``: the first that no live sibling is pinned to alone, else the
    one the fewest siblings share. Returns it, or None when it could not (logged; the worker serves on
    unpinned)."""
    parent = os.getppid()
    try:
        with choosing(parent) as alone:
            if not alone:
                log.warning(
                    "--cpus: worker %d waited %g s for its siblings to choose; choosing anyway",
                    os.getpid(),
                    LOCK_WAIT_S,
                )
            taken: Counter[int] = Counter()
            for sibling in _children(parent):
                if sibling == os.getpid():
                    continue
                mask = pinned_to(sibling)
                if mask is not None and len(mask) == 1:
                    taken.update(mask)
            cpu = min(cpus, key=lambda c: (taken[c], cpus.index(c)))
            pin({cpu})
    except OSError as e:
        log.warning("--cpus: worker %d could not pin itself (%s); it serves unpinned", os.getpid(), e)
        return None
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
