"""Read a customer or event file into an Arrow table of text columns.

Supported: CSV (``,`` ``;`` tab ``|`` or whitespace separated, also ``.gz``), Excel
``.xlsx``, Parquet and JSON Lines (also ``.gz``). Every value arrives as text (Parquet
keeps its types), with the file's own line number of each row, so later steps can
say exactly which row was wrong. Problems with the file as a whole raise
:class:`~strata.errors.InputError` with one line saying what to do; how each odd
file is handled is listed in ``docs/import-odd-files.md``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from strata.errors import InputError

#: Largest uncompressed size of an .xlsx we open, and the largest compression ratio.
MB = 1024 * 1024
XLSX_MAX_BYTES = 512 * MB
XLSX_MAX_RATIO = 200
#: Suffixes read as Excel workbooks (``.xlsm`` is an ``.xlsx`` that may hold macros).
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
#: First bytes of an OLE2 compound file: an old ``.xls`` or a password-protected workbook.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
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
        if gz:
            raise InputError(
                f"{path.name} holds a zip archive or a workbook: unpack it (gunzip) and "
                "import the file inside"
            )
        if kind in XLSX_SUFFIXES:
            return _read_xlsx(path)
        if _is_workbook(path):
            raise InputError(
                f"{path.name} is an Excel workbook, not {kind or 'text'}: rename it to end "
                "in .xlsx (or export it as CSV) and import that"
            )
        raise InputError(f"{path.name} is a zip archive: unzip it and import the file inside")
    if head.startswith(OLE2_MAGIC):
        raise InputError(
            f"{path.name} is an old-style Excel .xls workbook (or a password-protected one): "
            "save it from Excel as .xlsx or CSV, without a password, and import that"
        )
    if kind in XLSX_SUFFIXES:
        raise InputError(f"{path.name} is not an Excel workbook: export it again as .xlsx or CSV")
    if head.startswith(b"PAR1") or kind == ".parquet":
        return _read_parquet(path)
    if kind in {".jsonl", ".ndjson"}:
        return _read_jsonl(path, gz)
    return _read_delimited(path, gz, head, encoding)


def _head(path: Path, gz: bool) -> bytes:
    return _read_bytes(path, gz, SNIFF_BYTES)


def _is_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return "xl/workbook.xml" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


# -- delimited text ---------------------------------------------------------------------------


def _decode(data: bytes, name: str, encoding: str | None) -> tuple[str, str, list[str]]:
    """Text of ``data``, the encoding used and warnings; ``docs/import-odd-files.md`` has
    the rules."""
    warnings: list[str] = []
    if encoding:
        try:
            return data.decode(encoding), encoding, warnings
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(f"{name} cannot be read as {encoding}: {exc}") from None
    for bom, enc, title in (
        (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
        (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
        (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
        (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, warnings
            except UnicodeDecodeError as exc:
                line = _line_at(data, exc.start, enc)
                raise InputError(
                    f"{name} mixes encodings: it starts as {title} (it has a byte order mark) "
                    f"but line {line} is not {title}; re-save the whole file as UTF-8 (or pass "
                    "--encoding)"
                ) from None
    sample = data[:SNIFF_BYTES]
    if b"\x00" in sample:
        # UTF-16 without a byte order mark shows every other byte as NUL for ASCII text.
        for enc, zeros in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
            if zeros.count(0) > 0.4 * len(sample) // 2:
                try:
                    text = data.decode(enc)
                except UnicodeDecodeError as exc:
                    line = _line_at(data, exc.start, enc)
                    raise InputError(
                        f"{name} looks like UTF-16 text without a byte order mark, but line "
                        f"{line} is not valid UTF-16: re-save the file as UTF-8"
                    ) from None
                if not _BINARY.search(text[:SNIFF_BYTES]):
                    return text, enc, warnings
                break
        raise _not_text(name)
    if len(_BINARY_BYTES.findall(sample)) > max(2, len(sample) // 100):
        raise _not_text(name)
    try:
        return data.decode("utf-8"), "utf-8", warnings
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    # Not UTF-8. If other parts of the file are valid multi-byte UTF-8, it is mixed.
    if re.search(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}", data):
        line = _line_at(data, bad_at, "utf-8")
        raise InputError(
            f"{name} mixes encodings: most of it is UTF-8 but line {line} is not; re-save "
            "the whole file as UTF-8 (or pass --encoding)"
        )
    warnings.append("file is not UTF-8; read it as Windows-1252 (pass --encoding to override)")
    return data.decode("cp1252", errors="replace"), "cp1252", warnings


#: Control characters that text files do not hold (tab, newlines and form feed are fine).
_BINARY = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BINARY_BYTES = re.compile(b"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _not_text(name: str) -> InputError:
    return InputError(
        f"{name} is not a text file (it holds binary data): export the data as CSV, "
        "Excel .xlsx, Parquet or JSON Lines"
    )


def _line_at(data: bytes, offset: int, encoding: str) -> int:
    """The 1-based line of byte ``offset`` in ``data``, which is valid ``encoding`` before it."""
    return data[:offset].decode(encoding, errors="replace").count("\n") + 1


def _read_bytes(path: Path, gz: bool, size: int = -1) -> bytes:
    """The bytes of ``path`` (unpacked when ``gz``), or its first ``size`` bytes."""
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read(size)
        with open(path, "rb") as f:
            return f.read(size)
    except gzip.BadGzipFile:
        raise InputError(
            f"{path.name} is not gzip-compressed although its name ends in .gz: rename it "
            "without .gz (or compress it again)"
        ) from None
    except (EOFError, zlib.error) as exc:
        raise InputError(
            f"{path.name} is not a complete .gz file ({_first_line(exc)}): download or "
            "compress it again"
        ) from None
    except OSError as exc:
        raise InputError(f"{path.name} cannot be read: {exc.strerror or exc}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits the first lines into the same number (>1) of fields.

    Most lines (80%) must agree with the first; failing that, for a small or ragged
    sample, the first line's count must still be the commonest, shared by half the lines
    (the odd rows are then reported one by one, not taken as a sign of another format).
    """
    counted = {d: [len(row) for row in csv.reader(lines, delimiter=d)] for d in DELIMITERS}
    for share in (0.8, 0.5):
        best, best_fields = None, 1
        for delim, counts in counted.items():
            if not counts or counts[0] <= best_fields:
                continue
            agree = counts.count(counts[0])
            commonest = max(counts.count(c) for c in set(counts))
            if agree >= share * len(counts) and agree == commonest:
                best, best_fields = delim, counts[0]
        if best is not None:
            return best
    return None


_LEADING_BLANK_LINES = re.compile(r"(?:[ \t]*(?:\r\n|\n|\r))+")
_NEWLINE = re.compile(r"\r\n|\n|\r")
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
    # Blank lines above the header would count as the row the header is to be taken from.
    blank = _LEADING_BLANK_LINES.match(text)
    first_line = 1
    if blank and blank.end():
        first_line += len(_NEWLINE.findall(blank.group()))
        text = text[blank.end() :]
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
        sample_lines = [" ".join(ln.split()) for ln in sample_lines]
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
    if bad:
        # Only a serial read knows the number of each bad row; rare, so pay for it only then.
        table, bad = _arrow_csv(encoded, names, delimiter, has_header, threads=False)
    lines, bad = _line_numbers(encoded, delimiter, has_header, table.num_rows, bad)
    if first_line > 1:
        lines += first_line - 1
        bad = [(None if n is None else n + first_line - 1, reason) for n, reason in bad]
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
        n = row.actual_columns
        reason = f"has {n} field{'' if n == 1 else 's'} where the header has {row.expected_columns}"
        bad.append((row.number, reason))
        return "skip"

    try:
        # A BufferReader, not a Python file: Arrow's threads then never take the GIL, and
        # one still holding a Python file at interpreter exit aborts the process.
        table = pacsv.read_csv(
            pa.BufferReader(data),
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


def _line_numbers(
    data: bytes,
    delimiter: str,
    has_header: bool,
    n: int,
    bad: list[tuple[int | None, str]],
) -> tuple[np.ndarray, list[tuple[int | None, str]]]:
    """The file line of each of the ``n`` rows read, and of each bad row.

    Arrow numbers records (the header is record 1, blank lines are not counted); a
    record's line differs from its number only after blank lines or values holding line
    breaks, so only then are the records' first lines found by reading the text again.
    """
    records = int(has_header) + n + len(bad)
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    simple = (
        data.count(b"\n", 0, end) + 1 == records
        and data.find(b"\n\n", 0, end) < 0
        and data.find(b"\n\r\n", 0, end) < 0
    )
    starts = None if simple else _record_starts(data.decode("utf-8"), delimiter)
    if starts is not None and len(starts) != records:
        starts = None  # the two readers disagree: fall back to record numbers

    def line(number: int) -> int:
        return int(number if starts is None else starts[number - 1])

    skipped = [number for number, _ in bad if number is not None]
    good = np.arange(int(has_header) + 1, records + 1, dtype=np.int64)
    if skipped:
        good = good[~np.isin(good, skipped)]
    good = good[:n]
    lines = good if starts is None else starts[good - 1]
    return lines, [(None if k is None else line(k), reason) for k, reason in bad]


def _record_starts(text: str, delimiter: str) -> np.ndarray:
    """The 1-based line on which each non-empty record of ``text`` starts."""
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    starts = []
    previous = 0
    for row in reader:
        if row:
            starts.append(previous + 1)
        previous = reader.line_num
    return np.array(starts, dtype=np.int64)


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
        raise InputError(f"{path.name} is empty: export the data again")
    warnings: list[str] = []
    try:
        table = pajson.read_json(pa.BufferReader(data))
    except pa.ArrowInvalid as exc:
        # Arrow numbers rows within a block; find the bad line ourselves.
        table = _jsonl_as_text(data, path.name, _first_line(exc))
        warnings.append(
            "values of a field change type between lines (or a line is very long); "
            "read every value as text"
        )
    if table.num_rows == 0:
        raise InputError(f"{path.name} has no rows")
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    if data.count(b"\n", 0, end) + 1 == table.num_rows:
        lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    else:  # blank lines between the objects
        lines = np.array(
            [i for i, ln in enumerate(data[:end].split(b"\n"), start=1) if ln.strip()],
            dtype=np.int64,
        )
        if len(lines) != table.num_rows:
            lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return RawTable(table=_flatten_nested(table), lines=lines, format="jsonl", warnings=warnings)


def _jsonl_as_text(data: bytes, name: str, arrow_error: str) -> pa.Table:
    """Read JSON Lines with Python, every value as text; a bad line is an ``InputError``."""
    import json

    rows: list[dict] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except UnicodeDecodeError:
            raise InputError(
                f"{name}: line {number} is not UTF-8 text; re-save the file as UTF-8"
            ) from None
        except ValueError as exc:
            reason = getattr(exc, "msg", None) or _first_line(exc)
            raise InputError(
                f"{name}: line {number} is not valid JSON ({reason}); JSON Lines needs one "
                "whole JSON object on each line"
            ) from None
        if not isinstance(value, dict):
            raise InputError(
                f"{name}: line {number} holds a JSON {_JSON_KINDS.get(type(value), 'value')}, "
                "not an object; JSON Lines needs one JSON object on each line"
            )
        rows.append(value)
    if not rows:
        raise InputError(f"{name} is not JSON Lines: {arrow_error}")
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {n: pa.array([_json_text(row.get(n)) for row in rows], pa.string()) for n in names}
    return pa.table(columns)


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "true/false"}


def _json_text(value: object) -> str | None:
    import json

    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


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
    except (zipfile.BadZipFile, OSError):
        raise InputError(f"{path.name} is a damaged .xlsx file; save it again from Excel") from None
    # zipfile never unpacks more than a member's declared size, so checking the declared
    # sizes is enough: a member that lies about its size fails its checksum instead.
    if total / packed > XLSX_MAX_RATIO:
        raise InputError(
            f"{path.name} unpacks to {total / MB:,.0f} MB ({total / packed:,.0f}× its size), "
            "which looks like a zip bomb; export the sheet as CSV instead"
        )
    if total > XLSX_MAX_BYTES:
        raise InputError(
            f"{path.name} unpacks to {total / MB:,.0f} MB, more than the "
            f"{XLSX_MAX_BYTES / MB:,.0f} MB Strata opens as a workbook; export the sheet as "
            "CSV instead"
        )
    import openpyxl

    try:
        # data_only: a formula cell gives the value Excel last calculated, never the formula.
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise InputError(f"{path.name} cannot be opened as Excel: {_first_line(exc)}") from None
    warnings: list[str] = []
    try:
        ws = wb.worksheets[0]
        sheets = len(wb.worksheets)
        rows = enumerate(ws.iter_rows(values_only=True), start=1)
        # The header is the first row with a value: rows above it may be left empty.
        header = next((row for _, row in rows if not _blank_row(row)), None)
        if header is None:
            raise InputError(f"{path.name}: the first sheet ({ws.title!r}) is empty")
        names = _unique_names(["" if h is None else str(h) for h in header], warnings)
        columns: list[list[str | None]] = [[] for _ in names]
        lines = []
        for number, row in rows:
            if _blank_row(row):
                continue
            lines.append(number)
            for i in range(len(names)):
                columns[i].append(_cell_text(row[i]) if i < len(row) else None)
        empty_formulas = _formulas_without_value(path, getattr(ws, "_worksheet_path", None))
    except InputError:
        raise
    except Exception as exc:  # a damaged sheet fails while it is read, not when opened
        raise InputError(
            f"{path.name}: the sheet cannot be read ({_first_line(exc)}); save it again from Excel"
        ) from None
    finally:
        wb.close()
    if sheets > 1:
        warnings.append(f"read the first sheet ({ws.title!r}) of {sheets}")
    if empty_formulas:
        one = empty_formulas == 1
        warnings.append(
            f"{empty_formulas:,} formula cell{'' if one else 's'} {'has' if one else 'have'} no "
            "saved result (the workbook was not last saved by a spreadsheet app) and "
            f"{'was' if one else 'were'} read as empty; open and save the workbook in Excel or "
            "LibreOffice to keep the results"
        )
    table = pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})
    return RawTable(
        table=table, lines=np.array(lines, dtype=np.int64), format="xlsx", warnings=warnings
    )


def _blank_row(row: tuple | None) -> bool:
    return row is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


# A formula cell whose saved result is missing or empty (a text result, t="str", may be
# empty on purpose): <c r="B2"><f>A2*2</f><v/></c>, with or without a namespace prefix.
_EMPTY_FORMULA = re.compile(
    rb"<(?:\w+:)?c\b(?![^>]*\bt=\"(?:str|inlineStr)\")[^>]*>\s*"
    rb"<(?:\w+:)?f\b[^>]*?(?:/>|>[^<]*</(?:\w+:)?f>)\s*"
    rb"(?:<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>"
)


def _formulas_without_value(path: Path, member: str | None) -> int:
    """How many formula cells of the sheet ``member`` have no saved result."""
    if not member:
        return 0
    chunk, overlap = 1 << 22, 1 << 16
    count = 0
    with zipfile.ZipFile(path) as zf:
        try:
            f = zf.open(member.lstrip("/"))
        except KeyError:
            return 0
        with f:
            tail = b""
            while block := f.read(chunk):
                buffer = tail + block
                # A match ending inside the carried-over tail was counted last time.
                count += sum(1 for m in _EMPTY_FORMULA.finditer(buffer) if m.end() > len(tail))
                tail = buffer[-overlap:]
    return count


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
