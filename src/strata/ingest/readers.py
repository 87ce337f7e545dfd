"""Read a customer or event file into an Arrow table of text columns.

Supported: CSV (``,`` ``;`` tab ``|`` or whitespace separated, also ``.gz``), Excel
``.xlsx``, Parquet and JSON Lines (also ``.gz``). Every value arrives as text (Parquet
keeps its types), with the file's own line number of each row, so later steps can
say exactly which row was wrong. Problems with the file as a whole raise
:class:`~strata.errors.InputError` with one line saying what to do; how each odd
file is handled is listed in ``docs/import.md``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from strata.errors import InputError

#: Largest uncompressed size of an .xlsx we open, and the largest compression ratio.
XLSX_MAX_BYTES = 512 * 1024 * 1024
XLSX_MAX_RATIO = 200
SNIFF_BYTES = 64 * 1024
DELIMITERS = [",", ";", "\t", "|"]


@dataclass
class RawTable:
    """A file's rows as Arrow columns, with the line number each row came from."""

    table: pa.Table
    lines: np.ndarray  # int64, the 1-based line (CSV) or row (Excel) of each row
    format: str
    has_header: bool = True
    encoding: str = "utf-8"
    bad_rows: list[tuple[int | None, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def columns(self) -> list[str]:
        return self.table.column_names


def read_file(path: str | Path, *, encoding: str | None = None) -> RawTable:
    """Read ``path`` by its content and suffix.

    >>> raw = read_file("customers.csv")  # doctest: +SKIP
    >>> raw.columns
    ['customer_id', 'email', ...]
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the path of a file")
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    kind = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    head = _head(path, gz)
    if not head:
        raise InputError(f"{path.name} is empty: export the data again with its header row")
    if head.startswith(b"PK\x03\x04"):
        if kind != ".xlsx":
            raise InputError(
                f"{path.name} is a zip or Excel workbook, not {kind or 'text'}: "
                "save it as .xlsx (or export CSV) and import that"
            )
        return _read_xlsx(path)
    if kind == ".xlsx":
        raise InputError(f"{path.name} is not an Excel workbook: export it again as .xlsx or CSV")
    if head.startswith(b"PAR1") or kind == ".parquet":
        return _read_parquet(path)
    if kind in {".jsonl", ".ndjson"}:
        return _read_jsonl(path, gz)
    return _read_delimited(path, gz, head, encoding)


def _head(path: Path, gz: bool) -> bytes:
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read(SNIFF_BYTES)
        with open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise InputError(
            f"{path.name} cannot be read ({exc}); is it a complete .gz file?"
        ) from None


# -- delimited text ---------------------------------------------------------------------------


def _decode(data: bytes, name: str, encoding: str | None) -> tuple[str, str, list[str]]:
    """Text of ``data`` and the encoding used; see ``docs/import.md`` for the rules."""
    warnings: list[str] = []
    if encoding:
        try:
            return data.decode(encoding), encoding, warnings
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(f"{name} cannot be read as {encoding}: {exc}") from None
    for bom, enc in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, warnings
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{name} starts as {enc} but byte {exc.start} is not: re-save the file as UTF-8"
                ) from None
    if b"\x00" in data[:SNIFF_BYTES]:
        # UTF-16 without a byte order mark shows every other byte as NUL for ASCII text.
        sample = data[:SNIFF_BYTES]
        if sample[1::2].count(0) > 0.4 * len(sample) // 2:
            return data.decode("utf-16-le", errors="strict"), "utf-16-le", warnings
        if sample[0::2].count(0) > 0.4 * len(sample) // 2:
            return data.decode("utf-16-be", errors="strict"), "utf-16-be", warnings
        raise InputError(
            f"{name} is not a text file (it holds binary data): export the data as CSV, "
            "Excel .xlsx, Parquet or JSON Lines"
        )
    try:
        return data.decode("utf-8"), "utf-8", warnings
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    # Not UTF-8. If other parts of the file are valid multi-byte UTF-8, it is mixed.
    if re.search(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}", data):
        line = data.count(b"\n", 0, bad_at) + 1
        raise InputError(
            f"{name} mixes encodings: most of it is UTF-8 but line {line} is not; re-save "
            "the whole file as UTF-8 (or pass --encoding)"
        )
    warnings.append("file is not UTF-8; read it as Windows-1252 (pass --encoding to override)")
    return data.decode("cp1252", errors="replace"), "cp1252", warnings


def _read_bytes(path: Path, gz: bool) -> bytes:
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise InputError(
            f"{path.name} cannot be read ({exc}); is it a complete .gz file?"
        ) from None


def _sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits the first lines into the same number (>1) of fields."""
    best, best_fields = None, 1
    for delim in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delim)]
        consistent = counts and counts.count(counts[0]) >= 0.8 * len(counts)
        if consistent and counts[0] > max(best_fields, 1):
            best, best_fields = delim, counts[0]
    return best


_NUMBERISH = re.compile(r"^\s*[-+]?[\d.,]+\s*$")


def _looks_like_header(first: list[str], rest: list[list[str]]) -> bool:
    """A first row of words above rows of numbers is a header; a row of numbers is data."""
    if not first or any(not v.strip() for v in first):
        return bool(first) and not all(_NUMBERISH.match(v) for v in first if v.strip())
    return not all(_NUMBERISH.match(v) for v in first)


def _unique_names(names: list[str], warnings: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        name = raw.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            new = f"{name}_{seen[name]}"
            warnings.append(f"column {name!r} appears more than once; the copy is named {new!r}")
            name = new
        else:
            seen[name] = 1
        out.append(name)
    return out


def _read_delimited(path: Path, gz: bool, head: bytes, encoding: str | None) -> RawTable:
    data = _read_bytes(path, gz)
    text, used, warnings = _decode(data, path.name, encoding)
    del data
    if not text.strip():
        raise InputError(f"{path.name} is empty: export the data again with its header row")
    sample_lines = [ln for ln in text[:SNIFF_BYTES].splitlines()[:50] if ln.strip()]
    if len(sample_lines) > 1 and len(text) > SNIFF_BYTES:
        sample_lines = sample_lines[:-1]  # the last sampled line may be cut off
    delimiter = _sniff_delimiter(sample_lines)
    whitespace = False
    if delimiter is None:
        widths = {len(ln.split()) for ln in sample_lines}
        if len(widths) == 1 and widths.pop() > 1:
            whitespace = True
        elif len(sample_lines) == 1 and len(next(csv.reader(sample_lines))) > 1:
            delimiter = ","
        elif len(sample_lines) >= 1 and all(len(ln.split(",")) == 1 for ln in sample_lines):
            delimiter = ","  # a single column file
        else:
            raise InputError(
                f"{path.name}: cannot tell how the columns are separated (rows have "
                "different numbers of fields); export it as comma-separated CSV"
            )
    if whitespace:
        # Fixed-width-ish files (CDNOW): fields separated by runs of spaces.
        text = "\n".join(" ".join(ln.split()) for ln in text.splitlines())
        delimiter = " "
    rows = list(csv.reader(sample_lines[:20], delimiter=delimiter))
    has_header = _looks_like_header(rows[0], rows[1:])
    if has_header:
        names = _unique_names(rows[0], warnings)
    else:
        names = [f"column_{i + 1}" for i in range(len(rows[0]))]
    encoded = text.encode("utf-8")
    del text
    table, bad = _arrow_csv(encoded, names, delimiter, has_header, threads=True)
    lines = None
    if bad:
        # Only a serial read knows the line of each bad row; rare, so pay for it only then.
        table, bad = _arrow_csv(encoded, names, delimiter, has_header, threads=False)
        lines = _lines_skipping(table.num_rows, [n for n, _ in bad if n is not None], has_header)
    if lines is None:
        lines = np.arange(table.num_rows, dtype=np.int64) + (2 if has_header else 1)
    if table.num_rows == 0 and not bad:
        raise InputError(f"{path.name} has a header but no rows")
    return RawTable(
        table=table,
        lines=lines,
        format="csv",
        has_header=has_header,
        encoding=used,
        bad_rows=bad,
        warnings=warnings,
    )


def _arrow_csv(
    data: bytes, names: list[str], delimiter: str, has_header: bool, *, threads: bool
) -> tuple[pa.Table, list[tuple[int | None, str]]]:
    bad: list[tuple[int | None, str]] = []

    def on_bad_row(row: pacsv.InvalidRow) -> str:
        reason = f"has {row.actual_columns} fields where the header has {row.expected_columns}"
        bad.append((row.number, reason))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=names,
                skip_rows=1 if has_header else 0,
                use_threads=threads,
                block_size=1 << 24,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_bad_row
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InputError(f"the file cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    return table, bad


def _lines_skipping(n: int, skipped: list[int], has_header: bool) -> np.ndarray:
    """Line numbers of ``n`` good rows, given the (1-based data row) numbers of skipped ones."""
    offset = 1 if has_header else 0
    data_rows = np.arange(1, n + len(skipped) + 1, dtype=np.int64)
    keep = np.ones(len(data_rows), dtype=bool)
    for s in skipped:
        idx = s - 1 - offset if has_header else s - 1
        if 0 <= idx < len(keep):
            keep[idx] = False
    return data_rows[keep][:n] + offset


# -- other formats ----------------------------------------------------------------------------


def _read_parquet(path: Path) -> RawTable:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name} is not a readable Parquet file: {exc}") from None
    if table.num_rows == 0:
        raise InputError(f"{path.name} has no rows")
    return RawTable(
        table=_flatten_nested(table), lines=np.arange(1, table.num_rows + 1), format="parquet"
    )


def _read_jsonl(path: Path, gz: bool) -> RawTable:
    data = _read_bytes(path, gz)
    if not data.strip():
        raise InputError(f"{path.name} is empty")
    try:
        table = pajson.read_json(io.BytesIO(data))
    except pa.ArrowInvalid as exc:
        raise InputError(
            f"{path.name} is not JSON Lines (one JSON object per line): {str(exc).splitlines()[0]}"
        ) from None
    return RawTable(
        table=_flatten_nested(table), lines=np.arange(1, table.num_rows + 1), format="jsonl"
    )


def _flatten_nested(table: pa.Table) -> pa.Table:
    """Nested values (objects, lists) become JSON text; scalars keep their types."""
    import json

    columns = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_nested(col.type):
            col = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in col.to_pylist()],
                pa.string(),
            )
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def _read_xlsx(path: Path) -> RawTable:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos) or 1
    except zipfile.BadZipFile:
        raise InputError(f"{path.name} is a damaged .xlsx file; save it again from Excel") from None
    if total > XLSX_MAX_BYTES or total / packed > XLSX_MAX_RATIO:
        raise InputError(
            f"{path.name} unpacks to {total / 1e6:,.0f} MB ({total / packed:,.0f}× its size), "
            "which looks like a zip bomb; export the sheet as CSV instead"
        )
    import openpyxl

    try:
        # data_only: a formula cell gives the value Excel last calculated, never the formula.
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise InputError(f"{path.name} cannot be opened as Excel: {exc}") from None
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise InputError(f"{path.name}: the first sheet is empty")
        warnings: list[str] = []
        names = _unique_names(["" if h is None else str(h) for h in header], warnings)
        columns: list[list[str | None]] = [[] for _ in names]
        lines = []
        for number, row in enumerate(rows, start=2):
            if row is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
                continue
            lines.append(number)
            for i in range(len(names)):
                columns[i].append(_cell_text(row[i]) if i < len(row) else None)
    finally:
        wb.close()
    if not lines:
        raise InputError(f"{path.name} has a header but no rows")
    if len(wb.worksheets) > 1:
        warnings.append(f"read the first sheet ({ws.title!r}) of {len(wb.worksheets)}")
    table = pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})
    return RawTable(
        table=table, lines=np.array(lines, dtype=np.int64), format="xlsx", warnings=warnings
    )


def _cell_text(value: object) -> str | None:
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None
