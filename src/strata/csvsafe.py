"""CSV cells a spreadsheet cannot run: one rule for every file Strata writes.

A cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR is run as a formula by
spreadsheets (OWASP: CSV injection), so text starting so gets a leading ``'``. Numbers
stay numbers; ``None`` is an empty cell.
"""

from __future__ import annotations

from typing import Any

#: A cell a spreadsheet would run as a formula starts with one of these.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A value as a CSV cell.

    >>> neutralise('=HYPERLINK("http://x")'), neutralise("-2"), neutralise(-5.0)
    ('\\'=HYPERLINK("http://x")', "'-2", -5.0)
    >>> neutralise(None), neutralise("Ada")
    ('', 'Ada')
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
