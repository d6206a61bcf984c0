"""Units of the trade, one spelling each: every conversion to and from SI goes through these.

Internally the mechanism works in metres, seconds and metres per second; aviation reports
feet, knots, feet per minute and nautical miles, and a flight level is hundreds of feet.

>>> round(100 * FL_M, 1)  # FL100
3048.0
>>> round(250 * KT_MPS, 2)
128.61
"""

from __future__ import annotations

__all__ = ["FL_M", "FPM_MPS", "FT_M", "KT_MPS", "NM_M"]

FT_M = 0.3048
"""Metres per international foot."""
NM_M = 1852.0
"""Metres per international nautical mile."""
KT_MPS = NM_M / 3600.0
"""Metres per second per knot."""
FPM_MPS = FT_M / 60.0
"""Metres per second per foot per minute."""
FL_M = 100 * FT_M
"""Metres per flight level (a flight level is hundreds of feet on the standard pressure setting)."""
