"""Sizes, durations and counts as people write them, to base units and back.

Memory in megabytes (binary: 1G = 1024M, as schedulers count), run time in
seconds, counts as whole numbers. Every parser refuses what is not a
positive value of its kind with ``ValueError``, and an absurdly large one
with ``TooLarge`` before any arithmetic on it could overflow.
"""

from __future__ import annotations

import math
import re

# ASCII digits only, as schedulers and the form's own script read them:
# Python's \d and int() would also take "\uff14" or "\u0664" as a 4.
_INT = re.compile(r"\d+", re.ASCII)
_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)(?:([MGT])(?:I?B)?)?", re.IGNORECASE | re.ASCII)
_MEMORY_UNIT_MB = {None: 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
_CLOCK = re.compile(r"(?:(\d{1,3})-)?(\d{1,4}):(\d{2})(?::(\d{2}))?", re.ASCII)
_DAY_HOURS = re.compile(r"(\d{1,3})-(\d{1,2})", re.ASCII)
_UNITS = re.compile(
    r"(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,6})m(?:in)?)?(?:(\d{1,7})s)?", re.IGNORECASE | re.ASCII
)

#: Far beyond any site's limits: a number above one of these is refused as
#: too large before any arithmetic on it (which could overflow).
MAX_COUNT = 999_999
MAX_MEMORY_MB = 1024**4  # an exbibyte
MAX_RUNTIME_S = 999 * 86400


class TooLarge(ValueError):
    """A number beyond anything a job could have."""


def parse_memory(value: str | int | float) -> int:
    """Megabytes from ``4G``, ``4GB``, ``4GiB``, ``512M``, ``1.5T`` or a
    plain number of gigabytes (``4``, ``1.5``). Units are binary (1G =
    1024M), as schedulers count them; a fraction of a megabyte rounds up."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    if isinstance(value, (int, float)):
        number, unit_mb = value, 1024
    else:
        match = _MEMORY.fullmatch(value.strip())
        if not match:
            raise ValueError("not a size")
        number, unit = float(match.group(1)), match.group(2)
        unit_mb = _MEMORY_UNIT_MB[unit.upper() if unit else None]
    if number != number or number <= 0:  # NaN, zero or negative
        raise ValueError("not a positive size")
    # compared before multiplying: 10**400 or 1e306 must not reach float arithmetic
    if number > MAX_MEMORY_MB / unit_mb:
        raise TooLarge(f"larger than {format_memory(MAX_MEMORY_MB)}")
    return math.ceil(number * unit_mb)


def format_memory(mb: int) -> str:
    """The shortest exact way to write ``mb`` megabytes: ``4G``, ``1536M``."""
    for unit, size in (("T", 1024 * 1024), ("G", 1024)):
        if mb % size == 0:
            return f"{mb // size}{unit}"
    return f"{mb}M"


def parse_runtime(value: str | int | float) -> int:
    """Seconds from ``1:30:00`` (h:mm:ss), ``1:30`` (h:mm), ``1-00:00:00``
    or ``1-12`` (days-hours), ``90m``, ``2h``, ``1h30m``, ``1d``, ``45s``,
    or a plain number of hours (``2``, ``1.5``)."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if value != value or value <= 0:  # NaN, zero or negative
            raise ValueError("not a positive duration")
        if value > MAX_RUNTIME_S / 3600:  # before multiplying: 10**400 must not reach a float
            raise TooLarge(f"longer than {format_runtime(MAX_RUNTIME_S)}")
        return math.ceil(value * 3600)
    text = value.strip()
    seconds: int | None = None
    if _NUMBER.fullmatch(text):
        return parse_runtime(float(text))  # a string of many digits is inf here: too large
    if match := _CLOCK.fullmatch(text):
        days, hours, minutes, secs = match.groups()
        if int(minutes) >= 60 or (secs is not None and int(secs) >= 60):
            raise ValueError("minutes and seconds go up to 59")
        seconds = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(secs or 0)
    elif match := _DAY_HOURS.fullmatch(text):
        seconds = int(match.group(1)) * 86400 + int(match.group(2)) * 3600
    elif text and (match := _UNITS.fullmatch(text.replace(" ", ""))):
        days, hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    if not seconds or seconds <= 0:
        raise ValueError("not a duration")
    if seconds > MAX_RUNTIME_S:
        raise TooLarge(f"longer than {format_runtime(MAX_RUNTIME_S)}")
    return seconds


def format_runtime(seconds: int) -> str:
    """A short human duration: ``1h``, ``1h30m``, ``2d``, ``90s``."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_count(value: str | int | float) -> int:
    """A whole number from ``"4"`` or ``4`` (not ``4.5``, not ``True``)."""
    if isinstance(value, bool):
        raise ValueError("not a whole number")
    if isinstance(value, float) and not value.is_integer():  # NaN and infinities too
        raise ValueError("not a whole number")
    if isinstance(value, str):
        text = value.strip()
        if not _INT.fullmatch(text):
            raise ValueError("not a whole number")
        if len(text.lstrip("0")) > len(str(MAX_COUNT)):  # before int(): no 5000-digit ints
            raise TooLarge(f"more than {MAX_COUNT}")
        value = int(text)
    if value > MAX_COUNT:
        raise TooLarge(f"more than {MAX_COUNT}")
    return int(value)
