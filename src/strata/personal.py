"""Personal fields: which customer columns hold personal data (masked for viewers).

A column is personal when it is one of the defaults (:data:`DEFAULTS`, or named like
one: ``work_email``, ``billing_address``…), or when the workspace marked it so, by
hand (``strata personal-fields add``, ``PUT …/personal-fields``) or through an import
mapping whose attribute says ``personal: true``. The defaults always stay personal;
only the columns a workspace marked can be un-marked.

City, country and gender are not personal by default: alone they name no one, and
they are what segments and breakdowns are made of. A workspace that thinks otherwise
marks them.

>>> is_default("email"), is_default("billing_address"), is_default("city")
(True, True, False)
>>> fields = PersonalFields(app, "default")  # doctest: +SKIP
>>> fields.add(["loyalty_card"])  # doctest: +SKIP
['loyalty_card']
>>> fields.is_personal("loyalty_card"), fields.is_personal("product_name")  # doctest: +SKIP
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from strata import audit
from strata.catalog import Setting, Workspace
from strata.context import Strata
from strata.errors import InputError
from strata.warehouse.schema import check_column_name

#: The catalog setting holding a workspace's marked columns: ``{"columns": [...]}``.
SETTING = "personal_fields"

#: Columns holding personal data in every workspace, by exact name.
DEFAULTS = frozenset(
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
        "zip_code",
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
#: How the name patterns read, for listings and the docs.
PATTERNS = (
    "names containing the word email, mail, name, phone, mobile, birth, birthday, dob, "
    "address, street, zip, postcode or postal (except product_name, segment_name, "
    "model_name, event_name, company_name)"
)


def is_default(column: str) -> bool:
    """Whether ``column`` is personal in every workspace (it cannot be un-marked)."""
    col = column.lower()
    if col in _NOT_PERSONAL:
        return False
    return col in DEFAULTS or bool(_PERSONAL_WORDS.search(col))


def marked_in(session: Session, workspace_id: int) -> frozenset[str]:
    """The columns ``workspace_id`` marked personal, read in ``session``."""
    value = session.scalar(
        sa.select(Setting.value).where(Setting.workspace_id == workspace_id, Setting.key == SETTING)
    )
    return frozenset((value or {}).get("columns") or ())


class PersonalFields:
    """A workspace's personal fields: the defaults plus the columns it marked."""

    def __init__(self, app: Strata, workspace: str | Workspace | None = None):
        self.app = app
        self.ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)

    def marked(self) -> list[str]:
        """The columns this workspace marked personal, sorted."""
        with self.app.session() as s:
            return sorted(marked_in(s, self.ws.id))

    def is_personal(self, column: str) -> bool:
        return is_default(column) or column.lower() in self.marked()

    def listing(self) -> dict[str, Any]:
        """What is personal here: defaults, patterns, marked, and the customer columns."""
        marked = self.marked()
        present = list(self.app.warehouse.customer_schema(self.ws.id).names)
        return {
            "defaults": sorted(DEFAULTS),
            "patterns": PATTERNS,
            "marked": marked,
            "customer_columns": [c for c in present if is_default(c) or c in marked],
        }

    def add(self, columns: Iterable[str], *, source: str = "by hand") -> list[str]:
        """Mark ``columns`` personal; returns the marked list. Defaults need no marking."""
        names = {check_column_name(c.strip().lower()) for c in columns}
        return self._change(lambda now: now | {c for c in names if not is_default(c)}, source)

    def remove(self, columns: Iterable[str]) -> list[str]:
        """Un-mark ``columns``; a default stays personal (``InputError``)."""
        names = {c.strip().lower() for c in columns}
        defaults = sorted(c for c in names if is_default(c))
        if defaults:
            raise InputError(
                f"{', '.join(defaults)} {'is' if len(defaults) == 1 else 'are'} personal in "
                "every workspace and cannot be un-marked; only columns the workspace "
                "marked can be (see `strata personal-fields list`)"
            )
        return self._change(lambda now: now - names, "by hand")

    def replace(self, columns: Iterable[str]) -> list[str]:
        """Make ``columns`` the marked list (defaults in it are accepted and not stored)."""
        names = {check_column_name(c.strip().lower()) for c in columns}
        return self._change(lambda now: {c for c in names if not is_default(c)}, "by hand")

    def _change(self, how, source: str) -> list[str]:
        with self.app.session() as s:
            row = s.scalar(
                sa.select(Setting).where(Setting.workspace_id == self.ws.id, Setting.key == SETTING)
            )
            before = set((row.value if row else {}).get("columns") or ())
            after = set(how(set(before)))
            if after == before:
                return sorted(before)  # nothing changed: nothing to audit
            value = {"columns": sorted(after)}
            if row is None:
                s.add(Setting(workspace_id=self.ws.id, key=SETTING, value=value))
            else:
                row.value = value
            added, removed = sorted(after - before), sorted(before - after)
            words = []
            if added:
                words.append(f"marked {', '.join(added)} personal")
            if removed:
                words.append(f"un-marked {', '.join(removed)}")
            audit.record(
                s,
                self.ws.id,
                "personal_fields.update",
                f"{' and '.join(words)} ({source})",
                target_type="personal_fields",
                details={"added": added, "removed": removed, "columns": sorted(after)},
            )
            s.commit()
            return sorted(after)


def mark_from_mapping(app: Strata, workspace: Workspace, mapping: dict[str, Any] | None) -> None:
    """Mark the attributes an import mapping says are personal (``personal: true``)."""
    attributes = (mapping or {}).get("attributes") or {}
    names = [name for name, spec in attributes.items() if spec.get("personal")]
    if names:
        PersonalFields(app, workspace).add(names, source="import mapping")
