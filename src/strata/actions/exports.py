"""Files of a segment's members: for spreadsheets, Mailchimp, Klaviyo, HubSpot, Google, Meta.

An export writes the segment's current members into a CSV file that Strata keeps
(``STRATA_HOME/exports/<workspace id>/``) and records it as an
:class:`~strata.catalog.models.ExportFile`: format, rows, SHA-256, who made it. It can
be downloaded, listed and deleted (the file with it).

Members are read from the warehouse a batch at a time and written as they come, so a
segment of millions never sits in memory. :func:`write_records` is the pure part: records
in, CSV out, one column list per format (:data:`FORMATS`).

Every cell copied from customer data that a spreadsheet would run as a formula (it starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``
(OWASP, CSV injection), as in ``GET …/members.csv``. Numbers stored as numbers are written
as numbers (``-5.0`` stays ``-5.0``): a number is not a formula. Cells Strata builds itself
in a fixed shape (E.164 phones ``+442079460958``, hashes, country codes) hold no formula
and are written as they are, because the platforms reject a phone with a ``'``.

>>> ex = Exports(app, "default")  # doctest: +SKIP
>>> f = ex.export("Churn risk", "meta")  # doctest: +SKIP
>>> f.rows, ex.path(f.id)  # doctest: +SKIP
(412, PosixPath('/…/exports/1/churn-risk-meta-20250101T120000-3f2a.csv'))
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from strata import audit, governance, plans
from strata.actions import normalize as nz
from strata.catalog import Segment, Workspace
from strata.catalog.models import ExportFile, utcnow
from strata.context import Strata
from strata.csvsafe import neutralise
from strata.errors import InputError, NotFound

#: Rows per warehouse read while writing an export.
BATCH = 5_000
#: Customer attributes read as the postal code, the first one present.
ZIP_ATTRIBUTES = ("zip", "zip_code", "postal_code", "postcode")


# -- formats ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    """One member as the platform formats read them: the record and what is derived once."""

    record: dict[str, Any]
    first: str
    last: str
    #: ISO alpha-2 code of the customer's country, or "".
    country: str
    default_region: str | None
    tag: str

    @classmethod
    def of(cls, record: dict[str, Any], default_region: str | None, tag: str) -> Person:
        first, last = nz.split_name(record.get("name"))
        return cls(record, first, last, nz.country_code(record.get("country")), default_region, tag)

    def get(self, key: str) -> str:
        return nz.text(self.record.get(key))

    @property
    def zip(self) -> str:
        return next((self.get(k) for k in ZIP_ATTRIBUTES if self.get(k)), "")

    def phone(self) -> str:
        """E.164, read in the customer's country (else the default region)."""
        return nz.e164(self.record.get("phone"), self.country, self.default_region)


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Person], str]
    #: Built by Strata in a fixed shape (E.164, hex, ISO code): never a formula, kept as is.
    fixed: bool = False


def _col(header: str, value: Callable[[Person], str]) -> Column:
    return Column(header, value)


def _fixed(header: str, value: Callable[[Person], str]) -> Column:
    return Column(header, value, fixed=True)


def _hashed(header: str, value: Callable[[Person], str]) -> Column:
    return Column(header, lambda p: nz.sha256_hex(value(p)), fixed=True)


def _mailchimp_address(p: Person) -> str:
    # Mailchimp reads a whole address from one cell, its parts two spaces apart, the
    # country last as a code (GB, not UK).
    parts = [p.get("city"), p.zip, p.country or p.get("country")]
    return "  ".join(x for x in parts if x)


def _google_phone(p: Person) -> str:
    return nz.google_phone(p.record.get("phone"), p.country, p.default_region)


def _meta_phone(p: Person) -> str:
    return nz.meta_phone(p.record.get("phone"), p.country, p.default_region)


_GOOGLE_PLAIN = (
    _col("Email", lambda p: nz.google_email(p.get("email"))),
    _fixed("Phone", _google_phone),
    _col("First Name", lambda p: nz.google_name(p.first)),
    _col("Last Name", lambda p: nz.google_name(p.last)),
    _fixed("Country", lambda p: p.country),
    _col("Zip", lambda p: nz.google_zip(p.zip)),
)

#: Each platform format: its columns, in order (``csv`` has every customer column).
COLUMNS: dict[str, tuple[Column, ...]] = {
    "mailchimp": (
        _col("Email Address", lambda p: p.get("email")),
        _col("First Name", lambda p: p.first),
        _col("Last Name", lambda p: p.last),
        _col("Address", _mailchimp_address),
        _fixed("Phone Number", Person.phone),
        _col("Tags", lambda p: p.tag),
    ),
    "klaviyo": (
        _col("Email Address", lambda p: p.get("email")),
        _fixed("Phone Number", Person.phone),
        _col("First Name", lambda p: p.first),
        _col("Last Name", lambda p: p.last),
        _col("City", lambda p: p.get("city")),
        _col("Country", lambda p: p.get("country")),
        _col("Zip Code", lambda p: p.zip),
    ),
    "hubspot": (
        _col("Email", lambda p: p.get("email")),
        _col("First Name", lambda p: p.first),
        _col("Last Name", lambda p: p.last),
        _fixed("Phone Number", Person.phone),
        _col("City", lambda p: p.get("city")),
        _col("Country/Region", lambda p: p.get("country")),
        _col("Postal Code", lambda p: p.zip),
    ),
    "google": _GOOGLE_PLAIN,
    "google_hashed": (
        _hashed("Email", lambda p: nz.google_email(p.get("email"))),
        _hashed("Phone", _google_phone),
        _hashed("First Name", lambda p: nz.google_name(p.first)),
        _hashed("Last Name", lambda p: nz.google_name(p.last)),
        _fixed("Country", lambda p: p.country),
        _col("Zip", lambda p: nz.google_zip(p.zip)),
    ),
    "meta": (
        _hashed("email", lambda p: nz.meta_email(p.get("email"))),
        _hashed("phone", _meta_phone),
        _hashed("fn", lambda p: nz.meta_name(p.first)),
        _hashed("ln", lambda p: nz.meta_name(p.last)),
        _hashed("ct", lambda p: nz.meta_city(p.get("city"))),
        _hashed("zip", lambda p: nz.meta_zip(p.zip, p.country)),
        _hashed("country", lambda p: p.country.lower()),
        _hashed("gen", lambda p: nz.meta_gender(p.get("gender"))),
        _hashed("doby", lambda p: nz.meta_birth_year(p.record.get("birth_date"))),
    ),
}

#: Every export format and what it is for.
FORMATS: dict[str, str] = {
    "csv": "every customer attribute, for spreadsheets",
    "mailchimp": "Mailchimp audience import (the segment's name as the tag)",
    "klaviyo": "Klaviyo list upload (phones in E.164)",
    "hubspot": "HubSpot contacts import",
    "google": "Google Ads Customer Match, normalised plain text",
    "google_hashed": "Google Ads Customer Match, SHA-256 hashed",
    "meta": "Meta Custom Audiences customer list, SHA-256 hashed",
}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    return fmt


def check_region(default_region: str | None) -> str | None:
    """``default_region`` as a two-letter code, or an error naming the bad value."""
    if default_region is None or not default_region.strip():
        return None
    code = default_region.strip().upper()
    if len(code) != 2 or nz.country_code(code) != code:
        raise InputError(
            f"default region {default_region!r} is not a two-letter country code (e.g. GB, US)"
        )
    return code


def write_records(
    records: Iterable[dict[str, Any]],
    fmt: str,
    out: TextIO,
    *,
    default_region: str | None = None,
    columns: Sequence[str] | None = None,
    tag: str = "",
) -> int:
    """Write ``records`` (customer rows) as the CSV of ``fmt`` to ``out``; the rows written.

    ``columns`` are the ``csv`` format's columns (default: the first record's keys);
    ``tag`` is the Mailchimp tag (commas become spaces: Mailchimp splits tags at them);
    ``default_region`` reads phones without ``+`` of customers without a known country.

    >>> import io
    >>> buf = io.StringIO()
    >>> write_records([{"email": "A.B@Gmail.com", "name": "Ada Lovelace"}], "google", buf)
    1
    >>> buf.getvalue().splitlines()
    ['Email,Phone,First Name,Last Name,Country,Zip', 'ab@gmail.com,,ada,lovelace,,']
    """
    check_format(fmt)
    region = check_region(default_region)
    writer = csv.writer(out)
    if fmt == "csv":
        return _write_all_columns(records, writer, columns)
    cols = COLUMNS[fmt]
    writer.writerow([c.header for c in cols])
    tag = (tag or "").replace(",", " ").strip()
    n = 0
    for record in records:
        person = Person.of(record, region, tag)
        writer.writerow([_cell(c, person) for c in cols])
        n += 1
    return n


def _cell(column: Column, person: Person) -> str:
    value = column.value(person)
    return value if column.fixed else neutralise(value)


def _write_all_columns(records: Iterable[dict[str, Any]], writer, columns) -> int:
    rows = iter(records)
    first = next(rows, None)
    header = list(columns) if columns is not None else list(first or ())
    if header:
        writer.writerow(header)
    n = 0
    for record in itertools.chain(() if first is None else (first,), rows):
        writer.writerow([neutralise(record.get(c)) for c in header])
        n += 1
    return n


# -- the files Strata keeps -------------------------------------------------------------------
class Exports:
    """The export files of one workspace: make, list, find, delete."""

    def __init__(
        self, app: Strata, workspace: str | Workspace | None = None, *, batch_size: int = BATCH
    ):
        self.app = app
        self.ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)
        self.batch_size = batch_size

    @property
    def folder(self) -> Path:
        return self.app.settings.home / "exports" / str(self.ws.id)

    def export(
        self,
        segment: str,
        fmt: str,
        *,
        created_by: int | None = None,
        customer_ids: Sequence[int] | None = None,
        default_region: str | None = None,
    ) -> ExportFile:
        """Write the current members of ``segment`` as ``fmt`` into a file Strata keeps.

        ``customer_ids`` narrows the file to those of them (an automation exports who
        just entered). The answer is the catalog row: rows, SHA-256 and path.
        """
        check_format(fmt)
        region = check_region(default_region)
        seg = self._segment(segment)
        governance.check_approved("segment", seg)  # a changed segment waits for approval
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        name = f"{_slug(seg.name)}-{fmt.replace('_', '-')}-{stamp}-{secrets.token_hex(3)}.csv"
        final = self.folder / name
        partial = final.with_suffix(".partial")
        columns, rows = self._members(seg.id, customer_ids)
        try:
            with partial.open("w", newline="", encoding="utf-8") as out:
                n = write_records(
                    rows, fmt, out, default_region=region, columns=columns, tag=seg.name
                )
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        row = ExportFile(
            workspace_id=self.ws.id,
            segment_id=seg.id,
            format=fmt,
            path=final.relative_to(self.app.settings.home).as_posix(),
            rows=n,
            sha256=file_sha256(final),
            created_by=created_by,
        )
        try:
            with self.app.session() as s:
                s.add(row)
                plans.add_usage(s, self.ws.id, "exports")  # this month's usage
                s.flush()
                audit.record(
                    s,
                    self.ws.id,
                    "export.create",
                    f"exported {n:,} members of segment {seg.name!r} as {fmt}",
                    target_type="export",
                    target_id=row.id,
                    details={"segment_id": seg.id, "format": fmt, "rows": n},
                )
                s.commit()
                s.refresh(row)
                s.expunge(row)
        except BaseException:
            final.unlink(missing_ok=True)  # a file no row points to would never be removed
            raise
        return row

    def list(self, limit: int = 50, offset: int = 0) -> tuple[int, list[ExportFile]]:
        """The total, and one page of the workspace's exports, newest first."""
        where = ExportFile.workspace_id == self.ws.id
        with self.app.session() as s:
            total = s.scalar(sa.select(sa.func.count()).select_from(ExportFile).where(where))
            rows = list(
                s.scalars(
                    sa.select(ExportFile)
                    .where(where)
                    .order_by(ExportFile.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
        return total or 0, rows

    def get(self, export_id: int) -> ExportFile:
        with self.app.session() as s:
            row = s.get(ExportFile, export_id)
        if row is None or row.workspace_id != self.ws.id:
            raise NotFound(f"no export {export_id} in workspace {self.ws.name!r}")
        return row

    def path(self, export_id: int) -> Path:
        """Where the file of an export is; an error if it is gone from the disk."""
        row = self.get(export_id)
        path = (self.app.settings.home / row.path).resolve()
        if not path.is_relative_to(self.folder.resolve()) or not path.is_file():
            raise NotFound(f"the file of export {export_id} is gone from the server; export again")
        return path

    def delete(self, export_id: int) -> None:
        """Delete an export: its file and its row."""
        row = self.get(export_id)
        path = (self.app.settings.home / row.path).resolve()
        if path.is_relative_to(self.folder.resolve()):
            path.unlink(missing_ok=True)
        with self.app.session() as s:
            s.delete(s.get(ExportFile, row.id))
            audit.record(
                s,
                self.ws.id,
                "export.delete",
                f"deleted export {row.id} ({row.format}, {row.rows:,} rows)",
                target_type="export",
                target_id=row.id,
            )
            s.commit()

    def segment_names(self, ids: Iterable[int | None]) -> dict[int, str]:
        """Names of the segments ``ids`` (for listing exports)."""
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        with self.app.session() as s:
            rows = s.execute(sa.select(Segment.id, Segment.name).where(Segment.id.in_(wanted)))
            return {i: name for i, name in rows}

    # -- reading members ----------------------------------------------------------------------
    def _segment(self, name: str) -> Segment:
        from strata.segments.engine import Segments

        return Segments(self.app, self.ws).get(name)

    def _members(
        self, segment_id: int, customer_ids: Sequence[int] | None
    ) -> tuple[list[str], Iterator[dict[str, Any]]]:
        """The ``csv`` columns (as ``members.csv`` has them) and the members, streamed."""
        wh = self.app.warehouse
        customers = wh.table(self.ws.id, "customers")
        columns = [c for c in customers.columns if c != "customer_id"]
        return [*columns, "joined_at"], self._rows(segment_id, columns, customer_ids)

    def _rows(
        self, segment_id: int, columns: list[str], customer_ids: Sequence[int] | None
    ) -> Iterator[dict[str, Any]]:
        for batch in self._batches(segment_id, columns, customer_ids):
            yield from batch

    def _batches(
        self, segment_id: int, columns: list[str], customer_ids: Sequence[int] | None
    ) -> Iterator[list[dict[str, Any]]]:
        # Pages follow the customer number, so none is read twice and each read is small.
        wh = self.app.warehouse
        m = wh.table(self.ws.id, "memberships")
        customers = wh.table(self.ws.id, "customers")

        def read(condition, limit: int | None = None) -> list[dict[str, Any]]:
            current = m.filter(m.segment_id == segment_id, m.left_at.isnull(), condition).select(
                "customer_id", "joined_at"
            )
            expr = (
                current.inner_join(customers, "customer_id")
                .select("customer_id", *columns, "joined_at")
                .order_by("customer_id")
            )
            if limit is not None:
                expr = expr.limit(limit)
            return expr.to_pyarrow().to_pylist()

        if customer_ids is not None:
            ids = sorted({int(i) for i in customer_ids})
            for start in range(0, len(ids), self.batch_size):
                yield read(m.customer_id.isin(ids[start : start + self.batch_size]))
            return
        last = -1
        while True:
            batch = read(m.customer_id > last, self.batch_size)
            yield batch
            if len(batch) < self.batch_size:
                return
            last = batch[-1]["customer_id"]


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60] or "segment"


def download_name(row: ExportFile) -> str:
    """The file name a download offers: the stored one (Strata made it of [a-z0-9-])."""
    name = Path(row.path).name
    return name if re.fullmatch(r"[A-Za-z0-9-]+\.csv", name) else f"export-{row.id}.csv"
