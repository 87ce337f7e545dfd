"""Turn text columns into typed Arrow columns, vectorised, reporting each bad value.

Each parser takes an Arrow array and returns ``(typed, bad)``: the typed array (null
where the value was empty or bad) and a boolean mask of values that were present but
could not be read. Rules for odd values are in ``docs/import.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Parsed = tuple[pa.Array, np.ndarray]

# Formats tried for dates and times, in order of preference. Day-first and month-first
# slash dates are both candidates; the data decides (a first part above 12 proves
# day-first), and month-first wins a tie, as in US exports (Shopify, Stripe).
TIMESTAMP_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d",
    "%Y%m%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
]
_DAY_FIRST = {f: f.replace("%d/%m", "%m/%d") for f in TIMESTAMP_FORMATS if f.startswith("%d/%m")}


def _strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _bad(text: pa.Array, parsed: pa.Array) -> np.ndarray:
    return _mask(pc.and_(pc.is_valid(text), pc.is_null(parsed)))


def text(arr: pa.Array) -> Parsed:
    """Trimmed text; empty becomes null. Never bad."""
    s = _strings(arr)
    return s, np.zeros(len(s), dtype=bool)


def identifier(arr: pa.Array) -> Parsed:
    """Ids stay text, leading zeros kept (``00123``). Ids written as floats (``17850.0``,
    as spreadsheets and pandas write them) lose ``.0`` when every id in the column is a
    whole number, so ``17850`` and ``17850.0`` are the same customer; a column that also
    holds other ids (``A-7``, ``1.5``) is left exactly as written."""
    s = _strings(arr)
    present = pc.drop_null(s)
    if (
        len(present)
        and pc.any(pc.match_substring_regex(present, r"^\d+\.0+$")).as_py()
        and pc.all(pc.match_substring_regex(present, r"^\d+(\.0+)?$")).as_py()
    ):
        s = pc.replace_substring_regex(s, r"\.0+$", "")
    return s, np.zeros(len(s), dtype=bool)


def email(arr: pa.Array) -> Parsed:
    s = pc.utf8_lower(_strings(arr))
    ok = pc.match_substring_regex(s, r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    good = pc.if_else(ok, s, pa.scalar(None, pa.string()))
    return good, _bad(s, good)


_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


def number(arr: pa.Array) -> Parsed:
    """Decimal numbers: ``1234.5``, ``1,234.50``, ``$1,234``, ``(12.50)``, ``12,5`` (decimal
    comma when the column never uses a dot), ``1 234``."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return pc.cast(arr, pa.float64()), np.zeros(len(arr), dtype=bool)
    s = _strings(arr)
    try:  # the usual case: plain numbers, read by one cast
        fast = pc.cast(s, pa.float64())
        if not pc.any(pc.invert(pc.is_finite(fast))).as_py():  # "nan", "inf" go the long way
            return fast, np.zeros(len(s), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Currency signs and spaces inside numbers carry no value.
    c = pc.replace_substring_regex(s, "[\\s$£€¥\u00a0']", "")
    negative = pc.match_substring_regex(c, r"^\(.*\)$")
    c = pc.replace_substring_regex(c, r"^\((.*)\)$", r"\1")
    present = pc.drop_null(c)
    decimal_comma = (
        len(present) > 0
        and not pc.any(pc.match_substring(present, ".")).as_py()
        and pc.any(pc.match_substring_regex(present, r",\d{1,2}$")).as_py()
        and not pc.any(pc.match_substring_regex(present, r",\d{3}(,|$)")).as_py()
    )
    if decimal_comma:
        c = pc.replace_substring(c, ",", ".")
    else:
        # Thousands separators only where they group digits by three.
        grouped = pc.match_substring_regex(c, r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?$")
        c = pc.if_else(grouped, pc.replace_substring(c, ",", ""), c)
    ok = pc.match_substring_regex(c, _NUMBER)
    values = pc.cast(pc.if_else(ok, c, pa.scalar(None, pa.string())), pa.float64())
    values = pc.if_else(negative.fill_null(False), pc.negate(values), values)
    return values, _bad(s, values)


def integer(arr: pa.Array) -> Parsed:
    values, bad = number(arr)
    whole = pc.equal(values, pc.floor(values))
    ints = pc.cast(pc.if_else(whole, values, pa.scalar(None, pa.float64())), pa.int64())
    return ints, bad | _mask(pc.invert(whole.fill_null(True)))


_TRUE = {"true", "t", "yes", "y", "1", "x"}
_FALSE = {"false", "f", "no", "n", "0", ""}


def boolean(arr: pa.Array) -> Parsed:
    if pa.types.is_boolean(arr.type):
        return arr, np.zeros(len(arr), dtype=bool)
    s = pc.utf8_lower(_strings(arr))
    t = pc.is_in(s, pa.array(sorted(_TRUE)))
    f = pc.is_in(s, pa.array(sorted(_FALSE)))
    values = pc.if_else(t, True, pc.if_else(f, False, pa.scalar(None, pa.bool_())))
    return values, _bad(s, values)


def _choose_formats(sample: list[str]) -> list[str]:
    """The formats that read the sample, best first; day-first only with evidence.

    Arrow's own ``strptime`` judges the sample, so choosing and parsing agree.
    """
    values = pa.array(sorted(set(sample)), pa.string())
    scores: dict[str, int] = {}
    for fmt in TIMESTAMP_FORMATS:
        n = len(values) - pc.strptime(values, format=fmt, unit="us", error_is_null=True).null_count
        if n:
            scores[fmt] = n
    chosen = sorted(scores, key=lambda f: (-scores[f], TIMESTAMP_FORMATS.index(f)))
    # Drop day-first when month-first reads as much (no day above 12 seen).
    return [
        f for f in chosen if not (f in _DAY_FIRST and scores.get(_DAY_FIRST[f], 0) >= scores[f])
    ]


def timestamp(
    arr: pa.Array, formats: list[str] | None = None
) -> tuple[pa.Array, np.ndarray, list[str]]:
    """UTC timestamps (microseconds, no zone). Offsets such as ``-0500`` are applied.

    Returns the typed array, the bad mask and the formats used.
    """
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is not None:
            arr = pc.cast(arr, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        return pc.cast(arr, pa.timestamp("us")), np.zeros(len(arr), dtype=bool), []
    if pa.types.is_date(arr.type):
        return (
            pc.cast(pc.cast(arr, pa.date32()), pa.timestamp("us")),
            np.zeros(len(arr), dtype=bool),
            [],
        )
    s = _strings(arr)
    present = pc.drop_null(s)
    if formats is None:
        step = max(1, len(present) // 500)
        sample = (
            present.slice(0, len(present))
            .take(pa.array(range(0, len(present), step)))
            .to_pylist()[:500]
            if len(present)
            else []
        )
        formats = _choose_formats(sample)
    result = pa.nulls(len(s), pa.timestamp("us"))
    for fmt in formats:
        zoned = "%z" in fmt
        parsed = pc.strptime(s, format=fmt, unit="us", error_is_null=True)
        if zoned:
            parsed = pc.cast(parsed, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        result = pc.coalesce(result, parsed)
    return result, _bad(s, result), formats


def date(arr: pa.Array, formats: list[str] | None = None) -> Parsed:
    ts, bad, _ = timestamp(arr, formats)
    return pc.cast(ts, pa.date32()), bad


PARSERS: dict[str, Callable[[pa.Array], Parsed]] = {
    "string": text,
    "id": identifier,
    "email": email,
    "number": number,
    "integer": integer,
    "boolean": boolean,
    "date": date,
    "timestamp": lambda a: timestamp(a)[:2],
}
