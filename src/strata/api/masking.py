"""Masking personal data for callers who may not see it (viewers).

A viewer sees that a value exists and its first character, never the value itself:

>>> mask_value("email", "jane.doe@example.com")
'j***@example.com'
>>> mask_value("name", "Jane Doe")
'J***'
>>> mask_value("country", "DE")
'DE'
>>> mask_record({"external_id": "c1", "email": "jo@x.io", "phone": "+49 30 1234"})
{'external_id': 'c1', 'email': 'j***@x.io', 'phone': '+***'}

Which columns are personal is the workspace's list (:mod:`strata.personal`): the
defaults plus what it marked. Routes mask through the request's
:class:`Masker` (``access.mask(data)``), which also reaches into nested answers: a
webhook payload's customer, a firing's data, a breakdown's ``{"attribute": "email",
"value": …}`` and CSV downloads:

>>> m = Masker(frozenset({"loyalty_card"}))
>>> m.mask({"customer": {"loyalty_card": "LC-991", "city": "Berlin"}})
{'customer': {'loyalty_card': 'L***', 'city': 'Berlin'}}
>>> m.mask({"attribute": "email", "value": "jo@x.io", "count": 3})
{'attribute': 'email', 'value': 'j***@x.io', 'count': 3}
>>> m.csv("id,email\\r\\nc1,jo@x.io\\r\\n")
'id,email\\r\\nc1,j***@x.io\\r\\n'
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from strata.personal import is_default

#: Keys that name the column a sibling ``value``/``values``/``top`` belongs to.
_NAMING_KEYS = ("attribute", "column", "field", "condition", "property", "key")
#: Keys holding a value of the column named by one of :data:`_NAMING_KEYS`.
_VALUE_KEYS = ("value", "values", "top", "top_values", "examples", "sample", "min", "max")


def is_personal(column: str) -> bool:
    """Whether ``column`` is personal in every workspace (see :mod:`strata.personal`)."""
    return is_default(column)


def _mask_text(text: str) -> str:
    if not text:
        return text
    local, at, domain = text.partition("@")
    if at and local:
        return f"{local[0]}***@{domain}"
    return f"{text[0]}***"


def _hide(value: Any) -> Any:
    """A personal value as a viewer sees it: text keeps its first character."""
    if value is None:
        return None
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: _hide(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hide(v) for v in value]
    return "***"  # dates, numbers: nothing of them is shown


def mask_value(column: str, value: Any) -> Any:
    """``value`` as a viewer may see it in ``column`` (unchanged if not personal data).

    Strings keep their first character (and an e-mail its domain); dates and other
    values of a personal column become ``"***"``; ``None`` stays ``None``.
    """
    return Masker().value(column, value)


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` with every personal column masked (see :func:`mask_value`)."""
    return Masker().mask(record)


class Masker:
    """Masks the personal fields of one workspace: the defaults plus ``marked``.

    ``active=False`` is the masker of a caller who sees personal data: it changes nothing.
    """

    def __init__(self, marked: frozenset[str] = frozenset(), *, active: bool = True):
        self.marked = frozenset(c.lower() for c in marked)
        self.active = active

    def is_personal(self, column: str) -> bool:
        return is_default(column) or column.lower() in self.marked

    def value(self, column: str, value: Any) -> Any:
        """One value of ``column`` as the caller may see it."""
        if not self.active or not isinstance(column, str) or not self.is_personal(column):
            return value
        return _hide(value)

    def mask(self, data: Any) -> Any:
        """A copy of ``data`` (dicts, lists, scalars, nested) with personal values masked.

        A key that is a personal column masks everything under it; a dict naming a
        personal column (``{"attribute": "email", "value": …}``) masks its values.
        """
        if not self.active:
            return data
        if isinstance(data, dict):
            named = next(
                (
                    data[k]
                    for k in _NAMING_KEYS
                    if isinstance(data.get(k), str) and self.is_personal(data[k])
                ),
                None,
            )
            out = {}
            for key, value in data.items():
                personal = isinstance(key, str) and self.is_personal(key)
                if personal or (named is not None and key in _VALUE_KEYS):
                    out[key] = _hide(value)
                else:
                    out[key] = self.mask(value)
            return out
        if isinstance(data, list | tuple):
            return [self.mask(v) for v in data]
        return data

    def conditions(self, data: Any) -> Any:
        """A rule, condition or saved definition with the values it compares personal
        columns with masked (``{"attribute": "email", "value": …}``); its own fields (a
        segment's ``name``) are left as they are."""
        if not self.active:
            return data
        if isinstance(data, dict):
            named = any(
                isinstance(data.get(k), str) and self.is_personal(data[k]) for k in _NAMING_KEYS
            )
            return {
                k: _hide(v) if named and k in _VALUE_KEYS else self.conditions(v)
                for k, v in data.items()
            }
        if isinstance(data, list | tuple):
            return [self.conditions(v) for v in data]
        return data

    def changes(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A diff's changes (``path``, ``old``, ``new``) as a viewer sees them: the old and
        new values a rule compares with are masked, since the path alone does not say
        whether their column is personal."""
        if not self.active:
            return changes
        out = []
        for c in changes:
            last = re.split(r"[.\[]", str(c.get("path", "")).replace("]", ""))
            words = [w for w in last if w and not w.isdigit()]
            if words and (words[-1] in _VALUE_KEYS or self.is_personal(words[-1])):
                c = {**c, "old": _hide(c.get("old")), "new": _hide(c.get("new"))}
            else:
                c = {
                    **c,
                    "old": self.conditions(c.get("old")),
                    "new": self.conditions(c.get("new")),
                }
            out.append(c)
        return out

    def rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records (one per customer) with their personal columns masked."""
        return rows if not self.active else [self.mask(r) for r in rows]

    def import_errors(
        self, errors: list[dict[str, Any]], mapping: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """An import's bad values, masked by the file's column or the field it maps to.

        The file's columns have their own names (``Born``), so the mapping says which
        field each one fills (``birth_date``).
        """
        if not self.active:
            return errors
        field_of = {}
        for part in ("fields", "attributes"):
            for name, spec in ((mapping or {}).get(part) or {}).items():
                field_of[spec["column"] if isinstance(spec, dict) else spec] = name
        out = []
        for e in errors:
            if e.get("value") is not None:
                column = str(e.get("column", ""))
                personal = self.is_personal(field_of.get(column, column)) or self.is_personal(
                    column
                )
                e = {**e, "value": _hide(e["value"]) if personal else e["value"]}
            out.append(e)
        return out

    def import_report(self, report: dict[str, Any] | None) -> dict[str, Any] | None:
        """An import's report with its quoted bad values masked (see :meth:`import_errors`)."""
        if not self.active or not isinstance(report, dict) or not report.get("errors"):
            return report
        return {**report, "errors": self.import_errors(report["errors"], report.get("mapping"))}

    def csv(self, text: str) -> str:
        """A CSV document (header first) with the cells of personal columns masked."""
        if not self.active or not text:
            return text
        reader = csv.reader(io.StringIO(text, newline=""))
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n")
        header = next(reader, None)
        if header is None:
            return text
        writer.writerow(header)
        hidden = [self.is_personal(h) for h in header]
        for row in reader:
            writer.writerow(
                [_hide(v) if i < len(hidden) and hidden[i] and v else v for i, v in enumerate(row)]
            )
        return out.getvalue()
