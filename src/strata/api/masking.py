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
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

#: Columns holding personal data, by exact name.
PERSONAL = frozenset(
    {
        "email",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "phone",
        "mobile",
        "birth_date",
        "birthday",
        "date_of_birth",
        "address",
        "street",
        "zip",
        "postcode",
        "postal_code",
        "ip",
        "ip_address",
    }
)

# Imported attributes get their own columns (``billing_address``, ``work_email``…);
# catch those by the words in their names rather than listing every variant.
_PERSONAL_WORDS = re.compile(
    r"(^|_)(e?mail|name|phone|mobile|birth|birthday|dob|address|street|zip|postcode|postal)(_|$)"
)
#: Columns named like personal data that are not (a product's name is no one's).
_NOT_PERSONAL = frozenset(
    {"product_name", "segment_name", "model_name", "event_name", "company_name"}
)


def is_personal(column: str) -> bool:
    """Whether ``column`` holds personal data that viewers must not see."""
    col = column.lower()
    if col in _NOT_PERSONAL:
        return False
    return col in PERSONAL or bool(_PERSONAL_WORDS.search(col))


def _mask_text(text: str) -> str:
    if not text:
        return text
    local, at, domain = text.partition("@")
    if at and local:
        return f"{local[0]}***@{domain}"
    return f"{text[0]}***"


def mask_value(column: str, value: Any) -> Any:
    """``value`` as a viewer may see it in ``column`` (unchanged if not personal data).

    Strings keep their first character (and an e-mail its domain); dates and other
    values of a personal column become ``"***"``; ``None`` stays ``None``.
    """
    if value is None or not is_personal(column):
        return value
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dt.date | dt.datetime | int | float):
        return "***"
    return "***"


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` with every personal column masked (see :func:`mask_value`)."""
    return {key: mask_value(key, value) for key, value in record.items()}
