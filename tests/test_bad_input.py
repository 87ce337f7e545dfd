"""Bad input files: each gets a clear one-line error or a documented handling, never a
traceback (the table in ``docs/import-odd-files.md`` lists every case tested here).

Every file is built in ``tmp_path`` when the test runs. Error cases go through the real
``strata import`` command; handled cases call the library and check the report and the
stored values. Row numbers are file lines (the header is line 1) or Excel sheet rows.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import random
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from strata.catalog import ImportRun
from strata.context import Strata
from strata.errors import ImportRefused, InputError
from strata.ingest import readers
from strata.ingest.pipeline import run_import

TRANSACTIONS = "customer_id,order_id,timestamp,quantity,unit_price\n"
ORDERS = "1,A1,2011-01-01,2,5.00\n2,A2,2011-01-02,1,3.50\n"
CUSTOMERS = "customer_id,email,name,country,signup_date\n"


@pytest.fixture
def warehouse_url(tmp_path):
    """DuckDB only: these tests are about files (the warehouses are tested elsewhere), and
    a second warehouse would double the time of every ``strata`` subprocess."""
    return f"duckdb://{tmp_path / 'warehouse.duckdb'}"


# -- helpers ----------------------------------------------------------------------------------


def stored(app: Strata, table: str, workspace: str = "x") -> list[dict]:
    """Rows of a warehouse table of ``workspace``, in key order."""
    ws = app.workspace(workspace)
    t = app.warehouse.table(ws.id, table)
    key = {"customers": "customer_id", "events": "event_id"}.get(table)
    t = t.order_by(key) if key else t
    return t.to_pyarrow().to_pylist()


def names_by_id(app: Strata, workspace: str = "x") -> dict[str, str | None]:
    return {c["external_id"]: c["name"] for c in stored(app, "customers", workspace)}


def revenue_by_order(app: Strata, workspace: str = "x") -> dict[str, float | None]:
    return {e["order_id"]: e["revenue"] for e in stored(app, "events", workspace)}


def assert_one_line_error(result, expect: str) -> str:
    """``strata`` failed as an input error: exit 2, one ``error:`` line, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and line[len("error: ") :].strip(), line
    assert expect in line, line
    return line


def xlsx_rows(path: Path, rows: list[list], *more_sheets: str) -> None:
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    for title in more_sheets:
        wb.create_sheet(title)
    wb.save(path)


def rewrite_member(path: Path, member: str, change: Callable[[bytes], bytes]) -> None:
    """Replace one member of a zip (an .xlsx) with ``change`` of its bytes."""
    with zipfile.ZipFile(path) as zf:
        items = [(i, zf.read(i.filename)) for i in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in items:
            zf.writestr(info, change(data) if info.filename == member else data)


def random_bytes(n: int) -> bytes:
    return random.Random(7).randbytes(n)


# -- files that get a one-line error ----------------------------------------------------------


def mixed_encoding(path: Path) -> None:
    """UTF-8 lines, then a Windows-1252 line (line 3), then UTF-8 again."""
    path.write_bytes(
        (CUSTOMERS + "1,a@example.com,José,FR,2011-01-01\n").encode()
        + "2,b@example.com,Renée,FR,2011-01-02\n".encode("cp1252")
        + "3,c@example.com,Zoë,FR,2011-01-03\n".encode()
    )


def mixed_encoding_after_bom(path: Path) -> None:
    """The same after a UTF-8 byte order mark, as Excel's "CSV UTF-8" starts."""
    mixed_encoding(path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def png_named_csv(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random_bytes(3000))


def xlsx_named_csv(path: Path) -> None:
    xlsx_rows(path, [TRANSACTIONS.strip().split(","), ["1", "A1", "2011-01-01", 2, 5.0]])


def xls_named_csv(path: Path) -> None:
    """An old-style .xls (an OLE2 compound file) renamed, as Excel 97 saves it."""
    path.write_bytes(readers.OLE2_MAGIC + bytes(504) + random_bytes(2000))


def zip_bomb(path: Path) -> None:
    """A workbook-looking zip whose 20 MB of zeros pack to 20 KB (1000×)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("xl/worksheets/sheet1.xml", "w") as f:
            for _ in range(20):
                f.write(bytes(1 << 20))


def truncated_xlsx(path: Path) -> None:
    xlsx_rows(path, [TRANSACTIONS.strip().split(","), ["1", "A1", "2011-01-01", 2, 5.0]])
    path.write_bytes(path.read_bytes()[:1500])


def truncated_gzip(path: Path) -> None:
    packed = gzip.compress((TRANSACTIONS + ORDERS * 500).encode())
    path.write_bytes(packed[: len(packed) // 2])


def corrupt_gzip(path: Path) -> None:
    """A gzip header followed by bytes that are no deflate stream."""
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)) * 4)


def zip_bytes() -> bytes:
    """A zip archive holding a CSV, as a download of an export often is."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("orders.csv", TRANSACTIONS + ORDERS)
    return buffer.getvalue()


def write(text: str | bytes) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        path.write_bytes(text.encode() if isinstance(text, str) else text)

    return build


def orders_with_mapping(mapping: str) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        path.write_text(TRANSACTIONS + ORDERS)
        (path.parent / "mapping.yaml").write_text(mapping)

    return build


@dataclass(frozen=True)
class Bad:
    id: str
    file: str
    build: Callable[[Path], None]
    expect: str  # text the one error line must hold
    args: tuple[str, ...] = ()  # options of `strata import`; ``{tmp}`` is the test's folder

    def options(self, tmp: Path) -> dict:
        """The same options for :func:`run_import`."""
        args = [a.format(tmp=tmp) for a in self.args]
        names = {"--mapping": "mapping_file", "--encoding": "encoding"}
        out: dict = {"strict": "--strict" in args}
        for flag, name in names.items():
            if flag in args:
                out[name] = args[args.index(flag) + 1]
        return out


MAPPING = ("--mapping", "{tmp}/mapping.yaml")

#: Refused through the `strata` command: each costs a subprocess (~2 s).
BAD_FILES = [
    Bad("mixed-encoding", "customers.csv", mixed_encoding,
        "mixes encodings: most of it is UTF-8 but line 3 is not"),
    Bad("empty-file", "orders.csv", write(b""), "orders.csv is empty"),
    Bad("header-only", "orders.csv", write(TRANSACTIONS), "with a header but no rows"),
    Bad("blank-lines-only", "orders.csv", write("\n\n   \n\r\n\t\n"), "orders.csv is empty"),
    Bad("binary-with-nuls", "orders.csv", write(bytes(64) + random_bytes(4000)),
        "is not a text file (it holds binary data)"),
    Bad("png-named-csv", "orders.csv", png_named_csv, "is not a text file"),
    Bad("xlsx-named-csv", "orders.csv", xlsx_named_csv,
        "is an Excel workbook, not .csv: rename it to end in .xlsx"),
    Bad("zip-bomb-xlsx", "orders.xlsx", zip_bomb, "which looks like a zip bomb"),
    Bad("truncated-gzip", "orders.csv.gz", truncated_gzip, "is not a complete .gz file"),
    Bad("corrupt-gzip", "orders.csv.gz", corrupt_gzip, "is not a complete .gz file"),
    Bad("malformed-jsonl", "orders.jsonl",
        write('{"customer_id": "1", "order_id": "A1"}\n{"customer_id": "2", "order_id": \n'),
        "line 2 is not valid JSON"),
    Bad("mapping-names-missing-column", "orders.csv",
        orders_with_mapping("fields:\n  customer_id: CustomerID\n  order_id: order_id\n"),
        "the mapping puts customer_id in column 'CustomerID', which the file does not have",
        MAPPING),
    Bad("mapping-names-unknown-field", "orders.csv",
        orders_with_mapping("fields:\n  customer_number: customer_id\n"),
        "the mapping file names an unknown field 'customer_number'", MAPPING),
    Bad("strict-with-one-bad-value", "orders.csv",
        write(TRANSACTIONS + "1,A1,2011-01-01,2,5.00\n2,A2,2011-01-02,1,lots\n"),
        "(first: row 3, column 'unit_price': not a valid number); nothing was written",
        ("--strict",)),
]  # fmt: skip

#: More of the same, refused through the library (the command prints any such error alike).
MORE_BAD_FILES = [
    Bad("mixed-encoding-after-bom", "customers.csv", mixed_encoding_after_bom,
        "starts as UTF-8 (it has a byte order mark) but line 3 is not UTF-8"),
    Bad("unknown-encoding", "orders.csv", write(TRANSACTIONS + ORDERS),
        "cannot be read as klingon", ("--encoding", "klingon")),
    Bad("xls-named-csv", "orders.csv", xls_named_csv, "is an old-style Excel .xls workbook"),
    Bad("zip-archive", "orders.zip", write(zip_bytes()), "is a zip archive: unzip it"),
    Bad("csv-named-xlsx", "orders.xlsx", write(TRANSACTIONS + ORDERS), "is not an Excel workbook"),
    Bad("truncated-xlsx", "orders.xlsx", truncated_xlsx, "is a damaged .xlsx file"),
    Bad("jsonl-array-line", "orders.jsonl", write('{"customer_id": "1"}\n[1, 2, 3]\n'),
        "line 2 holds a JSON array, not an object"),
    Bad("json-array-not-lines", "orders.jsonl", write('[{"customer_id": "1"}]'),
        "line 1 holds a JSON array, not an object"),
    Bad("not-gzip-named-gz", "orders.csv.gz", write(TRANSACTIONS + ORDERS),
        "is not gzip-compressed although its name ends in .gz"),
    Bad("encoding-that-does-not-fit", "customers.csv",
        write((CUSTOMERS + "1,a@example.com,José,FR,\n").encode("cp1252")),
        "cannot be read as utf-8: 'utf-8' codec can't decode byte 0xe9", ("--encoding", "utf-8")),
    Bad("empty-first-sheet", "orders.xlsx", lambda p: xlsx_rows(p, []),
        "orders.xlsx: the first sheet ('Sheet') is empty"),
    Bad("mapping-not-yaml", "orders.csv", orders_with_mapping("fields: [customer_id: {"),
        "is not valid YAML/JSON", MAPPING),
    Bad("strict-with-a-ragged-row", "orders.csv",
        write(TRANSACTIONS + "1,A1,2011-01-01,2,5.00\n2,A2,2011-01-02\n"),
        "(first: row 3, column '(row)': has 3 fields where the header has 5)", ("--strict",)),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_FILES, ids=[c.id for c in BAD_FILES])
def test_bad_file_is_refused_with_one_line_and_nothing_written(case, cli, settings, tmp_path):
    path = tmp_path / case.file
    case.build(path)
    result = cli("import", path, "-w", "x", *[a.format(tmp=tmp_path) for a in case.args])
    assert_one_line_error(result, case.expect)
    with Strata(settings) as app:
        assert app.workspaces() == []  # refused before anything, not even the workspace


@pytest.mark.parametrize("case", MORE_BAD_FILES, ids=[c.id for c in MORE_BAD_FILES])
def test_more_bad_files_are_refused_with_one_line(case, duck_app, tmp_path):
    path = tmp_path / case.file
    case.build(path)
    with pytest.raises(InputError) as caught:
        run_import(duck_app, path, workspace="x", **case.options(tmp_path))
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in message and case.expect in message, message
    assert duck_app.workspaces() == []


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a folder; give the path of a file"),
    ],
    ids=["missing-path", "directory"],
)
def test_a_path_that_is_no_file_is_one_line_error(make, expect, cli, tmp_path):
    path = tmp_path / "orders.csv"
    make(path)
    assert_one_line_error(cli("import", path, "-w", "x"), expect)


# -- encodings --------------------------------------------------------------------------------


def test_utf8_bom_is_not_part_of_the_first_header(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (TRANSACTIONS + ORDERS).encode())
    report = run_import(duck_app, path, workspace="x")
    assert report["encoding"] == "utf-8-sig"
    assert report["mapping"]["fields"]["customer_id"]["column"] == "customer_id"
    assert (report["customers_created"], report["events_created"]) == (2, 2)
    assert set(names_by_id(duck_app)) == {"1", "2"}


@pytest.mark.parametrize(
    ("codec", "reported"),
    [("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")],
    ids=["utf16-with-bom", "utf16-le-without-bom", "utf16-be-without-bom"],
)
def test_utf16_files_import(codec, reported, duck_app, tmp_path):
    path = tmp_path / "customers.csv"
    text = CUSTOMERS + "1,a@example.com,José Müller,FR,2011-01-01\n2,b@example.com,Zoë,DE,\n"
    path.write_bytes(text.encode(codec))
    report = run_import(duck_app, path, workspace="x", preset="customers")
    assert report["encoding"] == reported
    assert report["customers_created"] == 2
    assert names_by_id(duck_app) == {"1": "José Müller", "2": "Zoë"}


def test_windows_1252_is_read_as_such_with_a_warning(duck_app, tmp_path):
    path = tmp_path / "customers.csv"
    text = (
        CUSTOMERS + "1,a@example.com,José Müller,FR,2011-01-01\n2,b@example.com,£ Smith – Ltd,GB,\n"
    )
    path.write_bytes(text.encode("cp1252"))
    report = run_import(duck_app, path, workspace="x", preset="customers")
    assert report["encoding"] == "cp1252"
    assert report["warnings"] == [
        "file is not UTF-8; read it as Windows-1252 (pass --encoding to override)"
    ]
    assert names_by_id(duck_app) == {"1": "José Müller", "2": "£ Smith – Ltd"}


@pytest.mark.parametrize(
    ("codec", "name"), [("latin-1", "Ångström Øre"), ("cp1251", "Иван Петров")]
)
def test_encoding_option_overrides_detection(codec, name, duck_app, tmp_path):
    # Detection would read both as Windows-1252: right for the first, garbage for the second.
    path = tmp_path / "customers.csv"
    path.write_bytes((CUSTOMERS + f"1,a@example.com,{name},SE,2011-01-01\n").encode(codec))
    report = run_import(duck_app, path, workspace="x", preset="customers", encoding=codec)
    assert report["encoding"] == codec
    assert report["warnings"] == []
    assert names_by_id(duck_app) == {"1": name}


def test_customer_list_with_signup_date_is_detected_without_preset(duck_app, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS + "1,a@example.com,Ann,FR,2011-01-01\n")
    report = run_import(duck_app, path, workspace="x")
    assert report["preset"] == "customers"


# -- rows and line numbers --------------------------------------------------------------------


def test_ragged_rows_are_skipped_and_reported_by_line(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        TRANSACTIONS
        + "1,A1,2011-01-01,2,5.00\n"
        + "2,A2,2011-01-02\n"  # line 3: too few fields
        + "3,A3,2011-01-03,1,1.00,surplus\n"  # line 4: too many
        + "4,A4,2011-01-04,1,1.00\n"
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["rows_read"] == 4
    assert report["rows_skipped"] == {"malformed row": 2}
    assert report["errors"] == [
        {"row": 3, "column": "(row)", "reason": "has 3 fields where the header has 5"},
        {"row": 4, "column": "(row)", "reason": "has 6 fields where the header has 5"},
    ]
    assert (report["customers_created"], report["events_created"]) == (2, 2)
    assert set(revenue_by_order(duck_app)) == {"A1", "A4"}


def test_unclosed_quote_makes_one_malformed_row_at_its_first_line(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        TRANSACTIONS
        + "1,A1,2011-01-01,2,5.00\n"
        + '2,"A2,2011-01-02,1,1.00\n'  # line 3: the quote swallows the rest of the file
        + "3,A3,2011-01-03,1,1.00\n"
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["errors"] == [
        {"row": 3, "column": "(row)", "reason": "has 2 fields where the header has 5"}
    ]
    assert set(revenue_by_order(duck_app)) == {"A1"}


def test_line_numbers_count_blank_lines_and_line_breaks_inside_values(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "\n\n"  # lines 1-2: blank lines above the header
        + TRANSACTIONS  # line 3
        + "1,A1,2011-01-01,2,5.00\n"  # line 4
        + "\n"  # line 5
        + '2,"A\n2",2011-01-02,1,1.00\n'  # lines 6-7: an order id holding a line break
        + "3,A3,2011-01-03\n"  # line 8: ragged
        + "4,A4,2011-01-04,1,lots\n"  # line 9: bad number
    )
    report = run_import(duck_app, path, workspace="x")
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(8, "(row)"), (9, "unit_price")]
    assert report["events_created"] == 2


# -- numbers, dates, ids ----------------------------------------------------------------------


def test_thousands_separators_currency_signs_and_parentheses(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        TRANSACTIONS
        + '1,A1,2011-01-01,1,"1,234.50"\n'
        + "2,A2,2011-01-01,1,$12.00\n"
        + "3,A3,2011-01-01,1,(5.25)\n"
        + "4,A4,2011-01-01,2,£3\n"
        + '5,A5,2011-01-01,1,"€ 1,000"\n'
        + '6,A6,2011-01-01,1,"1.234,50"\n'  # line 7: European style in a dot-decimal column
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["errors"] == [
        {"row": 7, "column": "unit_price", "reason": "not a valid number", "value": "1.234,50"}
    ]
    # A negative order total is a refund.
    assert revenue_by_order(duck_app) == {
        "A1": 1234.5,
        "A2": 12.0,
        "A3": -5.25,
        "A4": 6.0,
        "A5": 1000.0,
    }
    prices = sorted(i["unit_price"] for i in stored(duck_app, "order_items"))
    assert prices == [-5.25, 3.0, 12.0, 1000.0, 1234.5]


def test_decimal_comma_column(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id;order_id;timestamp;quantity;unit_price\n"
        "1;A1;2011-01-01;1;12,50\n2;A2;2011-01-01;2;3,5\n3;A3;2011-01-01;1;1 234,50\n"
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["invalid_values"] == 0
    assert revenue_by_order(duck_app) == {"A1": 12.5, "A2": 7.0, "A3": 1234.5}


def test_several_date_formats_in_one_column_and_an_unreadable_one(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        TRANSACTIONS
        + "1,A1,2011-12-30,1,1\n"
        + "2,A2,31/12/2011,1,1\n"  # a day above 12 proves day-first
        + "3,A3,2011-12-31T10:00:00,1,1\n"
        + "4,A4,not a date,1,1\n"  # line 5
        + "5,A5,01/02/2011,1,1\n"  # so this is 1 February
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["errors"] == [
        {"row": 5, "column": "timestamp", "reason": "not a valid date/time", "value": "not a date"}
    ]
    assert report["rows_skipped"] == {"invalid timestamp": 1}
    when = {e["order_id"]: e["timestamp"] for e in stored(duck_app, "events")}
    assert when == {
        "A1": dt.datetime(2011, 12, 30),
        "A2": dt.datetime(2011, 12, 31),
        "A3": dt.datetime(2011, 12, 31, 10),
        "A5": dt.datetime(2011, 2, 1),
    }


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["01/02/2011", "03/04/2011"], [dt.datetime(2011, 1, 2), dt.datetime(2011, 3, 4)]),
        (["01/02/2011", "12/31/2011"], [dt.datetime(2011, 1, 2), dt.datetime(2011, 12, 31)]),
    ],
    ids=["ambiguous-is-month-first", "proven-month-first"],
)
def test_slash_dates_without_proof_of_day_first_are_month_first(
    dates, expected, duck_app, tmp_path
):
    path = tmp_path / "orders.csv"
    path.write_text(TRANSACTIONS + "".join(f"{i},A{i},{d},1,1\n" for i, d in enumerate(dates)))
    run_import(duck_app, path, workspace="x")
    assert [e["timestamp"] for e in stored(duck_app, "events")] == expected


def test_leading_zero_ids_stay_text_and_float_ids_lose_point_zero(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        TRANSACTIONS
        + "00123,A1,2011-01-01,1,1\n"
        + "17850.0,A2,2011-01-01,1,1\n"
        + "17850,A3,2011-01-02,1,1\n"  # the same customer as 17850.0
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["customers_created"] == 2
    assert set(names_by_id(duck_app)) == {"00123", "17850"}


def test_row_missing_a_required_value_is_skipped_and_reported(duck_app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(TRANSACTIONS + "1,A1,,2,5.00\n2,A2,2011-01-02,1,3.50\n")
    report = run_import(duck_app, path, workspace="x")
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(2, "timestamp")]
    assert report["events_created"] == 1


# -- Excel ------------------------------------------------------------------------------------


def excel_orders(path: Path) -> None:
    """Sheet row 1 empty, header on row 2; a formula, real dates, text and number ids."""
    xlsx_rows(
        path,
        [
            [],
            ["customer_id", "order_id", "timestamp", "quantity", "unit_price"],
            ["00123", "A1", dt.datetime(2011, 12, 31, 10, 0), 2, "=D3*2"],
            ["00456", "A2", dt.date(2011, 1, 5), 1, 3.5],
            [17850, "A3", dt.date(2011, 1, 6), 1, 2],
            ["00789", "A4", dt.date(2011, 1, 7), 1, "#DIV/0!"],  # row 6: an error cell
        ],
        "Notes",
    )


def test_excel_dates_ids_error_cells_and_a_formula_never_calculated(duck_app, tmp_path):
    path = tmp_path / "orders.xlsx"
    excel_orders(path)
    report = run_import(duck_app, path, workspace="x")
    # openpyxl writes no saved result for a formula: the cell reads as empty, with a warning.
    assert report["warnings"] == [
        "read the first sheet ('Sheet') of 2",
        "1 formula cell has no saved result (the workbook was not last saved by a spreadsheet "
        "app) and was read as empty; open and save the workbook in Excel or LibreOffice to keep "
        "the results",
    ]
    # Both rows lack a unit price the order needs: each is skipped and reported.
    assert sorted(report["errors"], key=lambda e: e["row"]) == [
        {"row": 3, "column": "unit_price", "reason": "empty"},
        {"row": 6, "column": "unit_price", "reason": "not a valid number", "value": "#DIV/0!"},
    ]
    assert set(names_by_id(duck_app)) == {"00456", "17850"}
    events = {e["order_id"]: e for e in stored(duck_app, "events")}
    assert "A1" not in events
    assert events["A2"]["timestamp"] == dt.datetime(2011, 1, 5)
    assert events["A2"]["revenue"] == 3.5


def test_excel_formula_gives_the_value_excel_saved(duck_app, tmp_path):
    path = tmp_path / "orders.xlsx"
    excel_orders(path)
    # What Excel does on save: store the formula's result next to it.
    rewrite_member(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"<f>D3*2</f><v />", b"<f>D3*2</f><v>4</v>"),
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["warnings"] == ["read the first sheet ('Sheet') of 2"]
    assert revenue_by_order(duck_app)["A1"] == 8.0


def test_workbook_too_big_to_unpack_is_refused(monkeypatch, tmp_path):
    # The real limit is 512 MB; a smaller one keeps the test fast and its memory small.
    monkeypatch.setattr(readers, "XLSX_MAX_BYTES", 1 << 20)
    path = tmp_path / "big.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", random_bytes(2 << 20))
    with pytest.raises(InputError, match="more than the 1 MB Strata opens") as exc:
        readers.read_file(path)
    assert "\n" not in str(exc.value), str(exc.value)


def test_zip_bomb_that_understates_its_size_fails_its_checksum(duck_app, tmp_path):
    """zipfile never unpacks more than the size a member declares, so a bomb that lies
    about its size stops there, fails its CRC and is refused as damaged."""
    path = tmp_path / "orders.xlsx"
    excel_orders(path)
    member = "xl/worksheets/sheet1.xml"
    rewrite_member(path, member, lambda xml: xml + b" " * (30 << 20))  # 30 MB packs to 30 KB
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    # Declare the unpacked size to be the packed one (ratio 1, below every limit) in the
    # member's local header and in its central directory entry.
    data = bytearray(path.read_bytes())
    lie = struct.pack("<I", info.compress_size)
    data[info.header_offset + 22 : info.header_offset + 26] = lie
    name = member.encode()
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + len(name)] != name:
        entry = data.find(b"PK\x01\x02", entry + 4)
    data[entry + 24 : entry + 28] = lie
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo(member).file_size == info.compress_size
    with pytest.raises(InputError) as exc:
        run_import(duck_app, path, workspace="x")
    assert str(exc.value) == (
        "orders.xlsx: the sheet cannot be read (Bad CRC-32 for file 'xl/worksheets/sheet1.xml'); "
        "save it again from Excel"
    )


# -- other formats ----------------------------------------------------------------------------


def test_json_lines_with_blank_lines_and_changing_types(duck_app, tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text(
        '{"customer_id": 1, "order_id": "A1", "timestamp": "2011-01-01", "quantity": 2,'
        ' "unit_price": 5}\n'
        "\n"
        '{"customer_id": "00002", "order_id": 7, "timestamp": "2011-01-02", "quantity": 1,'
        ' "unit_price": "3.50"}\n'
        '{"customer_id": "3", "order_id": 8, "timestamp": "soon", "quantity": 1,'
        ' "unit_price": 1}\n'
    )
    report = run_import(duck_app, path, workspace="x")
    assert report["warnings"] == [
        "values of a field change type between lines (or a line is very long); "
        "read every value as text"
    ]
    assert report["errors"] == [
        {"row": 4, "column": "timestamp", "reason": "not a valid date/time", "value": "soon"}
    ]
    assert revenue_by_order(duck_app) == {"A1": 10.0, "7": 3.5}
    assert set(names_by_id(duck_app)) == {"1", "00002"}


def test_json_lines_and_parquet_import(duck_app, tmp_path):
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text(
        '{"customer_id": "1", "order_id": "A1", "timestamp": "2011-01-01", "quantity": 2,'
        ' "unit_price": 5.0}\n'
        '{"customer_id": "2", "order_id": "A2", "timestamp": "2011-01-02", "quantity": 1,'
        ' "unit_price": 3.5}\n'
    )
    report = run_import(duck_app, jsonl, workspace="x")
    assert (report["customers_created"], report["events_created"]) == (2, 2)

    parquet = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": [17850.0, 3.0],  # float ids, as pandas writes them
                "order_id": ["B1", "B2"],
                "timestamp": [dt.datetime(2011, 3, 1, 9, 30), dt.datetime(2011, 3, 2)],
                "quantity": [3, 1],
                "unit_price": [2.5, 4.0],
            }
        ),
        parquet,
    )
    report = run_import(duck_app, parquet, workspace="x")
    assert (report["customers_created"], report["events_created"]) == (2, 2)
    assert set(names_by_id(duck_app)) == {"1", "2", "17850", "3"}
    events = {e["order_id"]: e for e in stored(duck_app, "events")}
    assert events["B1"]["timestamp"] == dt.datetime(2011, 3, 1, 9, 30)
    assert events["B1"]["revenue"] == 7.5


# -- atomicity --------------------------------------------------------------------------------


def snapshot(settings) -> tuple:
    with Strata(settings) as app:
        with app.session() as s:
            runs = s.scalar(sa.select(sa.func.count()).select_from(ImportRun))
        return (
            runs,
            stored(app, "customers"),
            stored(app, "events"),
            stored(app, "order_items"),
        )


def test_refused_imports_leave_stored_data_exactly_as_it_was(cli, settings, tmp_path):
    good = tmp_path / "orders.csv"
    good.write_text(TRANSACTIONS + ORDERS)
    with Strata(settings) as app:
        assert run_import(app, good, workspace="x")["events_created"] == 2
    before = snapshot(settings)
    assert (before[0], len(before[1]), len(before[2]), len(before[3])) == (1, 2, 2, 2)

    # Refused in the library: new rows and one bad value, under strict.
    strict = tmp_path / "more.csv"
    strict.write_text(TRANSACTIONS + "3,A3,2011-01-03,1,1.00\n4,A4,2011-01-04,1,oops\n")
    with Strata(settings) as app, pytest.raises(ImportRefused, match="nothing was written"):
        run_import(app, strict, workspace="x", strict=True)
    assert snapshot(settings) == before

    # Refused by the command: a file that mixes encodings, with rows that would be new.
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(
        (TRANSACTIONS.replace("\n", ",product\n") + "5,A5,2011-01-05,1,1.00,Crème\n").encode()
        + "6,A6,2011-01-06,1,1.00,Brûlée\n".encode("cp1252")
    )
    assert_one_line_error(cli("import", mixed, "-w", "x"), "but line 3 is not")
    assert snapshot(settings) == before
