"""``serve --cpus``: the list read as an engineer writes it, and refused in words when it names what the
process may not use (the processes themselves: tests/api/test_processes.py)."""

from __future__ import annotations

import os

import pytest

from deconflict.api.affinity import parse_cpus
from deconflict.errors import InvalidInput

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux pins processes to CPUs")

ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
FIRST = ALLOWED[0]


def test_a_cpu_a_list_and_a_range_in_their_order_each_once() -> None:
    assert parse_cpus(f"{FIRST}") == [FIRST]
    assert parse_cpus(f" {FIRST} ") == [FIRST]
    assert parse_cpus(f"{FIRST},{FIRST}") == [FIRST]
    assert parse_cpus(f"{FIRST}-{FIRST}") == [FIRST]
    if len(ALLOWED) >= 2 and ALLOWED[1] == FIRST + 1:
        assert parse_cpus(f"{FIRST + 1},{FIRST}") == [FIRST + 1, FIRST]
        assert parse_cpus(f"{FIRST}-{FIRST + 1}") == [FIRST, FIRST + 1]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("4096", "--cpus: CPU 4096 is not one this process may run on; it may use "),
        ("abc", "--cpus: 'abc' is not a CPU number or a range like 2-3 (give for example 1, or 0,1); this process"),
        ("", "--cpus: an empty item in the list is not a CPU number"),
        ("0,,1", "--cpus: an empty item in the list is not a CPU number"),
        ("1-", "--cpus: '1-' is not a CPU number"),
        ("\u00b2", "--cpus: '\u00b2' is not a CPU number"),  # a superscript two: str.isdigit() says it is one
        ("\u0663", "--cpus: '\u0663' is not a CPU number"),  # an Arabic-Indic three: int() reads it, we do not
        ("1-0", "--cpus: the range 1-0 runs backwards; write 0-1"),
        ("0-99999999999", "--cpus: CPU "),
    ],
)
def test_what_is_not_a_cpu_this_process_may_use_is_refused_in_words(given: str, said: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_cpus(given)
    assert refused.value.message.startswith(said), refused.value.message
    assert refused.value.field == "cpus"
