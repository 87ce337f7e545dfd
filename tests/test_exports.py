"""Exports of a segment: every format checked cell by cell, hashes against fixed values.

The customers below are chosen to hit every rule: formula-like text, Gmail and
googlemail addresses with dots and capitals, phones written nationally and
internationally in GB, US and DE, one that is not a phone, missing values.

Every expected SHA-256 in this file was computed once outside Strata, with
``printf '%s' 'value' | sha256sum``; none is made by calling Strata's normalisers. The
phone hash of ``16505551212`` is also the one Meta publishes for ``(650)555-1212``.
"""

from __future__ import annotations

import csv
import datetime as dt
import doctest
import hashlib
import io
from pathlib import Path

import ibis
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from strata.actions import exports as exports_mod
from strata.actions import normalize
from strata.actions.exports import FORMATS, Exports, write_records
from strata.context import Strata
from strata.errors import InputError, NotFound
from strata.segments.engine import Segments
from strata.warehouse import Batch
from tests.conftest import ApiServer, api_settings, duckdb_settings

SEGMENT = "=VIP,spring"  # a formula-like name with a comma: the Mailchimp tag
HYPERLINK = '=HYPERLINK("http://evil.example","click")'
EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#: external_id, name, email, phone, country, city, gender, birth_date, balance, zip
CUSTOMERS = [
    ("c1", f"{HYPERLINK} Jones", "John.Smith@Gmail.com", "020 7946 0958", "GB", "London",
     "male", dt.date(1980, 5, 17), -5.0, "SW1A 1AA"),
    ("c2", "+1", "  Jane.Doe@GoogleMail.com ", "+1 (650) 555-1212", "United States",
     "Menlo Park", "female", dt.date(1975, 1, 2), 12.5, "94025-1234"),
    ("c3", "Seán O'Brien-Smith", "First.Last@Example.co.uk", "(650) 555-1213", "US",
     "São Paulo", "nonbinary", None, None, None),
    ("c4", "@x Ünal", "ops@example.com", "030 1234567", "Germany", "-2", "F",
     dt.date(1990, 12, 31), -0.5, "10115"),
    ("c5", "\tTabby Cat", "tab@example.com", "+49 30 1234567", "DE", "\rReturn", None, None,
     None, None),
    ("c6", "Jean-Luc Picard", "J.L.Picard@gmail.com", "not a phone", "DE", "Köln", None, None,
     None, None),
    ("c7", None, None, None, None, None, None, None, None, None),
    ("c8", "-2", "minus@example.com", "07700 900123", None, None, None, None, None, None),
]  # fmt: skip


def _batch() -> Batch:
    cols = list(zip(*CUSTOMERS, strict=True))
    names = ["external_id", "name", "email", "phone", "country", "city", "gender"]
    table = {n: pa.array(cols[i], pa.string()) for i, n in enumerate(names)}
    table["birth_date"] = pa.array(cols[7], pa.date32())
    table["balance"] = pa.array(cols[8], pa.float64())
    table["zip"] = pa.array(cols[9], pa.string())
    return Batch(customers=pa.table(table))


def load_shop(app: Strata, workspace: str = "shop") -> int:
    """The customers above in ``workspace``, all in the static segment ``SEGMENT``."""
    ws = app.workspace(workspace, create=True)
    app.warehouse.load(
        ws.id,
        _batch(),
        new_columns={"balance": ibis.dtype("float64"), "zip": ibis.dtype("string")},
    )
    Segments(app, ws).save_static(SEGMENT, [c[0] for c in CUSTOMERS])
    return ws.id


def read_csv(path: Path | bytes) -> list[list[str]]:
    # Bytes, not read_text(): universal newlines would turn a CR inside a cell into LF.
    data = path if isinstance(path, bytes) else path.read_bytes()
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    settings = duckdb_settings(tmp_path_factory.mktemp("exports"))
    with Strata(settings) as app:
        load_shop(app)
        yield app, Exports(app, "shop")


def exported(shop, fmt: str, **kw) -> list[list[str]]:
    _, ex = shop
    row = ex.export(SEGMENT, fmt, **kw)
    return read_csv(ex.path(row.id))


# -- every format, cell by cell ---------------------------------------------------------------
def test_csv_has_every_column_and_neutralises_text_but_not_numbers(shop):
    rows = exported(shop, "csv")
    header, body = rows[0], rows[1:]
    assert header[:7] == ["external_id", "email", "name", "phone", "country", "city", "gender"]
    assert header[-3:] == ["balance", "zip", "joined_at"] and "customer_id" not in header
    got = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert list(got) == [c[0] for c in CUSTOMERS]
    want = {
        "c1": {"name": f"'{HYPERLINK} Jones", "balance": "-5.0", "phone": "020 7946 0958",
               "email": "John.Smith@Gmail.com", "birth_date": "1980-05-17", "zip": "SW1A 1AA"},
        "c2": {"name": "'+1", "email": "  Jane.Doe@GoogleMail.com ",
               "phone": "'+1 (650) 555-1212", "balance": "12.5", "zip": "94025-1234"},
        "c3": {"name": "Seán O'Brien-Smith", "city": "São Paulo", "balance": "", "zip": ""},
        "c4": {"name": "'@x Ünal", "city": "'-2", "balance": "-0.5", "gender": "F"},
        "c5": {"name": "'\tTabby Cat", "city": "'\rReturn", "phone": "'+49 30 1234567"},
        "c6": {"phone": "not a phone", "city": "Köln"},
        "c7": {"name": "", "email": "", "phone": "", "country": "", "balance": ""},
        "c8": {"name": "'-2", "phone": "07700 900123", "country": ""},
    }  # fmt: skip
    for cid, cells in want.items():
        assert {k: got[cid][k] for k in cells} == cells, cid
    assert all(dt.datetime.fromisoformat(r["joined_at"]) for r in got.values())


MAILCHIMP = [
    ["Email Address", "First Name", "Last Name", "Address", "Phone Number", "Tags"],
    ["John.Smith@Gmail.com", f"'{HYPERLINK}", "Jones", "London  SW1A 1AA  GB", "+442079460958",
     "'=VIP spring"],
    ["Jane.Doe@GoogleMail.com", "'+1", "", "Menlo Park  94025-1234  US", "+16505551212",
     "'=VIP spring"],
    ["First.Last@Example.co.uk", "Seán", "O'Brien-Smith", "São Paulo  US", "+16505551213",
     "'=VIP spring"],
    ["ops@example.com", "'@x", "Ünal", "'-2  10115  DE", "+49301234567", "'=VIP spring"],
    ["tab@example.com", "Tabby", "Cat", "Return  DE", "+49301234567", "'=VIP spring"],
    ["J.L.Picard@gmail.com", "Jean-Luc", "Picard", "Köln  DE", "", "'=VIP spring"],
    ["", "", "", "", "", "'=VIP spring"],
    ["minus@example.com", "'-2", "", "", "", "'=VIP spring"],
]  # fmt: skip

KLAVIYO = [
    ["Email Address", "Phone Number", "First Name", "Last Name", "City", "Country", "Zip Code"],
    ["John.Smith@Gmail.com", "+442079460958", f"'{HYPERLINK}", "Jones", "London", "GB",
     "SW1A 1AA"],
    ["Jane.Doe@GoogleMail.com", "+16505551212", "'+1", "", "Menlo Park", "United States",
     "94025-1234"],
    ["First.Last@Example.co.uk", "+16505551213", "Seán", "O'Brien-Smith", "São Paulo", "US", ""],
    ["ops@example.com", "+49301234567", "'@x", "Ünal", "'-2", "Germany", "10115"],
    ["tab@example.com", "+49301234567", "Tabby", "Cat", "Return", "DE", ""],
    ["J.L.Picard@gmail.com", "", "Jean-Luc", "Picard", "Köln", "DE", ""],
    ["", "", "", "", "", "", ""],
    ["minus@example.com", "", "'-2", "", "", "", ""],
]  # fmt: skip

HUBSPOT = [
    ["Email", "First Name", "Last Name", "Phone Number", "City", "Country/Region",
     "Postal Code"],
    ["John.Smith@Gmail.com", f"'{HYPERLINK}", "Jones", "+442079460958", "London", "GB",
     "SW1A 1AA"],
    ["Jane.Doe@GoogleMail.com", "'+1", "", "+16505551212", "Menlo Park", "United States",
     "94025-1234"],
    ["First.Last@Example.co.uk", "Seán", "O'Brien-Smith", "+16505551213", "São Paulo", "US", ""],
    ["ops@example.com", "'@x", "Ünal", "+49301234567", "'-2", "Germany", "10115"],
    ["tab@example.com", "Tabby", "Cat", "+49301234567", "Return", "DE", ""],
    ["J.L.Picard@gmail.com", "Jean-Luc", "Picard", "", "Köln", "DE", ""],
    ["", "", "", "", "", "", ""],
    ["minus@example.com", "'-2", "", "", "", "", ""],
]  # fmt: skip

GOOGLE = [
    ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"],
    ["johnsmith@gmail.com", "+442079460958", f"'{HYPERLINK.lower()}", "jones", "GB", "SW1A 1AA"],
    ["janedoe@googlemail.com", "+16505551212", "'+1", "", "US", "94025-1234"],
    ["first.last@example.co.uk", "+16505551213", "seán", "o'brien-smith", "US", ""],
    ["ops@example.com", "+49301234567", "'@x", "ünal", "DE", "10115"],
    ["tab@example.com", "+49301234567", "tabby", "cat", "DE", ""],
    ["jlpicard@gmail.com", "", "jean-luc", "picard", "DE", ""],
    ["", "", "", "", "", ""],
    ["minus@example.com", "", "'-2", "", "", ""],
]  # fmt: skip

#: printf '%s' VALUE | sha256sum, for each normalised value of GOOGLE above.
GOOGLE_HASHED = [
    ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"],
    [
        "3586de92bb3636d0885a12eff961429a32e4ebd764b96f50d85d016f9338d586",  # johnsmith@gmail.com
        "f0bf0228144d9fe2bdf1da2d8ca698f17bf1410ee688b075c27062e47b6f0b6d",  # +442079460958
        "c44edb63cce460cab3c2ba78a4ca3adc18de09b3ef4f4b939e4757987f963260",  # =hyperlink(...)
        "9706987d633e05a0d2931c21108b37e8c790570048ac47c48900314bb325d606",  # jones
        "GB",
        "SW1A 1AA",
    ],
    [
        "338abf9ef1c8793cadc7bcf51ed595338eb727ed9e06ce3d91d566d60b975937",  # janedoe@googlemail
        "1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8",  # +16505551212
        "c59dc4e44ff99288156d4dff2168f6ac7ddee6b1fc7ccc0754656ffaa6d351ea",  # +1
        "",
        "US",
        "94025-1234",
    ],
    [
        "a51108c072063ca2e2f7df44b31e78a86fc3715c9604e3c30aaf0c9a95421e17",  # first.last@example
        "2197a10ec8561cc2b2f4d9baa4b291c71d277b30f3b072965b4b42b6457642be",  # +16505551213
        "78396ad8e08042dadb54ca66815337434b223a84b109fe9ece9ca22350e180d8",  # seán
        "5349291f7c643970cc1b897c8ffb45a8b630e59c1fecc3d1e4dc8e292a7971a9",  # o'brien-smith
        "US",
        "",
    ],
    [
        "af3c82544f648b38dc7d403473bb4b957cd04353afd9096fa871c1e469656c8c",  # ops@example.com
        "74bd805bcc47f8603082430ca056311389e38b74fcdfbc32bcb5c6a9269ff3bf",  # +49301234567
        "37f6276fa87c768f552b56babf0aae27a45a34f9058c4ab939673aa1c9a9232c",  # @x
        "ee796da88988903be2d1dd97f41e5a5bc9a2449f938fadae8ab7b1f56b89b779",  # ünal
        "DE",
        "10115",
    ],
    [
        "395e63a6491c409403ad6d61635ecdd9a15ff8c2d516462b21a551058badf1d7",  # tab@example.com
        "74bd805bcc47f8603082430ca056311389e38b74fcdfbc32bcb5c6a9269ff3bf",  # +49301234567
        "d06a8a38bd90b2ca716e7d607169d575b3ea8407c0cc79f8db6ec6392f6e11bb",  # tabby
        "77af778b51abd4a3c51c5ddd97204a9c3ae614ebccb75a606c3b6865aed6744e",  # cat
        "DE",
        "",
    ],
    [
        "e0658ace925bfebfcbe46b3d3b2892fedb1996a9f9ed9c3693ddefc1c458dda7",  # jlpicard@gmail.com
        "",
        "541459444b713dcbea4a267a8135219e7b6aadf83437691eb4ad6d72dfaba804",  # jean-luc
        "b4e6bf0156a0ef1c6427f9b2f82654757c7bce8327a9bf2f6afe83b8a5254067",  # picard
        "DE",
        "",
    ],
    ["", "", "", "", "", ""],
    [
        "5e5982add089492b8b08d52efe0c3b1d5e3fc710fbf2e24b4b78bd46c8faab69",  # minus@example.com
        "",
        "cf3bae39dd692048a8bf961182e6a34dfd323eeb0748e162eaf055107f1cb873",  # -2
        "",
        "",
        "",
    ],
]

#: printf '%s' VALUE | sha256sum, for Meta's normalisation of each value.
META = [
    ["email", "phone", "fn", "ln", "ct", "zip", "country", "gen", "doby"],
    [
        "d0c648bc36f12061bec770df216cea2ab95851b9350fd54b658de53b0407767a",  # john.smith@gmail.com
        "35e206e5dec4c89b9e8b71b8c32724a5bb518483ac5a20c6617d738375b3b823",  # 442079460958
        "ddef09b884b23560be0abe134d90958ac2839e640b662989189037d7e5d74c1e",  # hyperlinkhttp...
        "9706987d633e05a0d2931c21108b37e8c790570048ac47c48900314bb325d606",  # jones
        "6089854c94ca5454b76be6752c562901a985f64c9a946f62976aeab593b83161",  # london
        "830e1d4b9838bab1f5c2acdb23e0b502ff13a9832c4632e8d67a1d43d3b7f614",  # sw1a1aa
        "0b407281768f0e833afef47ed464b6571d01ca4d53c12ce5c51d1462f4ad6677",  # gb
        "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a",  # m
        "051c2e380d07844ffaca43743957f8c0efe2bdf74c6c1e6a9dcccb8d1a3c596b",  # 1980
    ],
    [
        "9c2764e1af636435a4bcf2a98733aeb0e027d6e78855043310150e99d73d3440",  # jane.doe@googlemail
        "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",  # 16505551212 (Meta's)
        "",  # "+1" has no letters
        "",
        "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685",  # menlopark
        "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7",  # 94025
        "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",  # us
        "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111",  # f
        "20ee235b5de5b36244da6f9aa1cbdd032a90867ba92276ccc8c38c0d0d57fcec",  # 1975
    ],
    [
        "a51108c072063ca2e2f7df44b31e78a86fc3715c9604e3c30aaf0c9a95421e17",  # first.last@example
        "268d31cd925fb98e60b03179861ca41aec7f4fe32b9cd33b585ec5f4441c4a0a",  # 16505551213
        "78396ad8e08042dadb54ca66815337434b223a84b109fe9ece9ca22350e180d8",  # seán
        "16765783f9c8c8a3accf27f1abb877688cb5904c21a4a7afb5f125bcfcb246ba",  # obriensmith
        "3eda1428ae1aece064071f8d40f08fe2bc59ffa66c171a163caf15122ec4d7f0",  # sãopaulo
        "",
        "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",  # us
        "",  # nonbinary: neither f nor m
        "",
    ],
    [
        "af3c82544f648b38dc7d403473bb4b957cd04353afd9096fa871c1e469656c8c",  # ops@example.com
        "2f9fbc550b12cbc0e6242384cc472bd1e4f058a8b773f189f7acb86d202655ce",  # 49301234567
        "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",  # x
        "ee796da88988903be2d1dd97f41e5a5bc9a2449f938fadae8ab7b1f56b89b779",  # ünal
        "",  # city "-2" has no letters
        "ac7bb74de6884ffce919c15fef4193749d4588026c643973946713ac46da540d",  # 10115
        "959a45d44e6fcf58361ed004681556fe50129f2109e817dec098c00c9e5d2578",  # de
        "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111",  # f
        "a7be8e1fe282a37cd666e0632b17d933fa13f21addf4798fc0455bc166e2488c",  # 1990
    ],
    [
        "395e63a6491c409403ad6d61635ecdd9a15ff8c2d516462b21a551058badf1d7",  # tab@example.com
        "2f9fbc550b12cbc0e6242384cc472bd1e4f058a8b773f189f7acb86d202655ce",  # 49301234567
        "d06a8a38bd90b2ca716e7d607169d575b3ea8407c0cc79f8db6ec6392f6e11bb",  # tabby
        "77af778b51abd4a3c51c5ddd97204a9c3ae614ebccb75a606c3b6865aed6744e",  # cat
        "7187f0675eb3827939741acf7342ba78836ecec21a31ecf3f34a55309d3bee8a",  # return
        "",
        "959a45d44e6fcf58361ed004681556fe50129f2109e817dec098c00c9e5d2578",  # de
        "",
        "",
    ],
    [
        "a2cdc2cb55153fbf4d39711e8862f4be5adca43407cd6b2cb806a0f8db19f222",  # j.l.picard@gmail.com
        "",  # not a phone
        "7fef38066db9900f992fa9926eea8cc648f44c2af50c4d511c415422196c8ef5",  # jeanluc
        "b4e6bf0156a0ef1c6427f9b2f82654757c7bce8327a9bf2f6afe83b8a5254067",  # picard
        "72903358b624f52cbea526d61506f68b2943ff6da81d9c94b931ffac00703c29",  # köln
        "",
        "959a45d44e6fcf58361ed004681556fe50129f2109e817dec098c00c9e5d2578",  # de
        "",
        "",
    ],
    ["", "", "", "", "", "", "", "", ""],
    [
        "5e5982add089492b8b08d52efe0c3b1d5e3fc710fbf2e24b4b78bd46c8faab69",  # minus@example.com
        "",  # no + and no country: no region to read it in
        "",  # "-2" has no letters
        "",
        "",
        "",
        "",
        "",
        "",
    ],
]


@pytest.mark.parametrize(
    ("fmt", "want"),
    [
        ("mailchimp", MAILCHIMP),
        ("klaviyo", KLAVIYO),
        ("hubspot", HUBSPOT),
        ("google", GOOGLE),
        ("google_hashed", GOOGLE_HASHED),
        ("meta", META),
    ],
)
def test_platform_file_equals_the_expected_cells(shop, fmt, want):
    got = exported(shop, fmt)
    assert got[0] == want[0]
    for i, (g, w) in enumerate(zip(got[1:], want[1:], strict=True)):
        assert g == w, f"{fmt} row {i + 1} ({CUSTOMERS[i][0]})"


@pytest.mark.parametrize("fmt", ["google_hashed", "meta"])
def test_an_empty_value_gives_an_empty_cell_never_the_hash_of_nothing(shop, fmt):
    rows = exported(shop, fmt)
    cells = [c for r in rows[1:] for c in r]
    assert EMPTY_SHA not in cells
    assert rows[7] == [""] * len(rows[0])  # c7 has nothing at all
    hashed = [c for c in cells if len(c) == 64]
    assert hashed and all(set(c) <= set("0123456789abcdef") for c in hashed)


def test_the_hashed_google_file_is_the_hash_of_the_plain_one(shop):
    plain, hashed = exported(shop, "google"), exported(shop, "google_hashed")
    for p, h in zip(plain[1:], hashed[1:], strict=True):
        for i in range(4):  # Email, Phone, First Name, Last Name
            value = p[i][1:] if p[i].startswith("'") else p[i]
            assert h[i] == (hashlib.sha256(value.encode()).hexdigest() if value else "")
        assert h[4:] == p[4:]  # Country and Zip are not hashed


def test_a_default_region_reads_phones_of_customers_without_a_country(shop):
    assert exported(shop, "google")[8][1] == ""
    with_region = exported(shop, "google", default_region="gb")
    assert with_region[8][1] == "+447700900123"
    assert with_region[4][1] == "+49301234567"  # the customer's own country still wins
    meta = exported(shop, "meta", default_region="GB")
    # printf %s 447700900123 | sha256sum
    assert meta[8][1] == "033134b911b137918338415ee3d20a064b24773d36a3b02e8b99fdd3fcd6b4cd"


def test_bad_format_or_region_is_refused_before_anything_is_written(shop):
    _, ex = shop
    before = ex.list()[0]
    with pytest.raises(InputError, match="unknown export format 'xls'"):
        ex.export(SEGMENT, "xls")
    with pytest.raises(InputError, match="not a two-letter country code"):
        ex.export(SEGMENT, "google", default_region="Narnia")
    with pytest.raises(NotFound, match="no segment named 'nope'"):
        ex.export("nope", "csv")
    assert ex.list()[0] == before
    assert not list(ex.folder.glob("*.partial"))


# -- streaming, the catalog row, the file ---------------------------------------------------
def test_small_batches_write_the_same_file_as_one_batch(shop):
    app, ex = shop
    whole = ex.export(SEGMENT, "meta")
    for size in (1, 3):
        paged = Exports(app, "shop", batch_size=size).export(SEGMENT, "meta")
        assert paged.rows == whole.rows == len(CUSTOMERS)
        assert paged.sha256 == whole.sha256
        assert ex.path(paged.id).read_bytes() == ex.path(whole.id).read_bytes()


def test_customer_ids_narrow_the_file_to_those_members(shop):
    app, ex = shop
    ws = app.workspace("shop")
    ids = Segments(app, ws).members(SEGMENT, limit=100)[1]
    by_ext = {m["external_id"]: m["customer_id"] for m in ids}
    wanted = [by_ext["c6"], by_ext["c2"], by_ext["c4"], 10**9]  # the last is no member
    row = Exports(app, ws, batch_size=2).export(SEGMENT, "klaviyo", customer_ids=wanted)
    got = read_csv(ex.path(row.id))
    assert row.rows == 3
    assert got == [KLAVIYO[0], KLAVIYO[2], KLAVIYO[4], KLAVIYO[6]]


def test_an_export_records_rows_and_sha256_and_delete_removes_the_file(shop):
    app, ex = shop
    row = ex.export(SEGMENT, "hubspot", created_by=None)
    path = ex.path(row.id)
    assert path.parent == app.settings.home / "exports" / str(ex.ws.id)
    assert row.rows == 8 and row.format == "hubspot" and row.segment_id is not None
    assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    total, rows = ex.list(limit=1)
    assert total >= 1 and rows[0].id == row.id  # newest first
    ex.delete(row.id)
    assert not path.exists()
    with pytest.raises(NotFound):
        ex.get(row.id)


def test_exports_of_another_workspace_are_not_found(shop):
    app, ex = shop
    row = ex.export(SEGMENT, "csv")
    other = Exports(app, app.workspace("elsewhere", create=True))
    for call in (other.get, other.path, other.delete):
        with pytest.raises(NotFound):
            call(row.id)
    assert ex.path(row.id).exists()


def test_write_records_is_pure_and_counts_rows():
    buf = io.StringIO()
    n = write_records(
        [{"name": "=1+1 Lee", "email": "X@Y.Z", "phone": "+44 20 7946 0958"}], "mailchimp", buf,
        tag="Spring, VIP",
    )  # fmt: skip
    assert n == 1
    assert read_csv(buf.getvalue().encode())[1] == [
        "X@Y.Z", "'=1+1", "Lee", "", "+442079460958", "Spring  VIP",
    ]  # fmt: skip
    empty = io.StringIO()
    assert write_records([], "csv", empty, columns=["email", "name"]) == 0
    assert empty.getvalue() == "email,name\r\n"
    assert set(FORMATS) == {"csv", "mailchimp", "klaviyo", "hubspot", "google",
                            "google_hashed", "meta"}  # fmt: skip


def test_the_normalisers_examples_hold():
    for module in (normalize, exports_mod):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# -- the API ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from strata.api.routes import exports as routes

    server = ApiServer(api_settings(tmp_path_factory.mktemp("exports-api")))
    try:
        paths = {getattr(r, "path", "") for r in server.app.routes}
        if "/api/v1/workspaces/{workspace_id}/exports" not in paths:
            server.app.include_router(routes.router, prefix="/api/v1")
        owner = server.owner()
        ws = owner.post("/api/v1/workspaces", json={"name": "shop"}).json()["id"]
        with server.service.writing() as app:
            load_shop(app)
            seg = Segments(app, app.workspace("shop")).get(SEGMENT).id
        yield server, owner, f"/api/v1/workspaces/{ws}", ws, seg
    finally:
        server.close()


def test_api_creates_lists_downloads_and_deletes_an_export(api):
    server, owner, base, _, seg = api
    r = owner.post(f"{base}/exports", json={"segment_id": seg, "format": "meta"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["rows"], made["format"], made["segment"]) == (8, "meta", SEGMENT)
    assert made["filename"].endswith(".csv") and made["filename"].startswith("vip-spring-meta-")

    listed = owner.get(f"{base}/exports").json()
    assert listed["total"] >= 1 and listed["items"][0]["id"] == made["id"]
    assert owner.get(f"{base}/exports/{made['id']}").json()["sha256"] == made["sha256"]

    down = owner.get(f"{base}/exports/{made['id']}/download")
    assert down.status_code == 200
    assert down.headers["content-type"].startswith("text/csv")
    assert f'filename="{made["filename"]}"' in down.headers["content-disposition"]
    with server.service.reading() as app:
        stored = Exports(app, "shop").path(made["id"])
    assert down.content == stored.read_bytes()
    assert hashlib.sha256(down.content).hexdigest() == made["sha256"]
    assert len(down.content) == made["bytes"]
    assert read_csv(down.content) == META

    assert owner.delete(f"{base}/exports/{made['id']}").status_code == 204
    assert not stored.exists()
    assert owner.get(f"{base}/exports/{made['id']}").status_code == 404
    assert owner.get(f"{base}/exports/{made['id']}/download").status_code == 404


def test_api_refuses_bad_bodies_and_other_workspaces_segments(api):
    _, owner, base, _, seg = api
    bad_format = owner.post(f"{base}/exports", json={"segment_id": seg, "format": "xls"})
    assert bad_format.status_code == 422
    other = owner.post("/api/v1/workspaces", json={"name": "other"}).json()["id"]
    r = owner.post(f"/api/v1/workspaces/{other}/exports", json={"segment_id": seg, "format": "csv"})
    assert r.status_code == 404


def test_a_viewer_gets_403_on_every_export_route(api):
    server, owner, base, ws, seg = api
    made = owner.post(f"{base}/exports", json={"segment_id": seg, "format": "csv"}).json()
    viewer = server.user_with_role(ws, "viewer")
    calls = [
        viewer.post(f"{base}/exports", json={"segment_id": seg, "format": "csv"}),
        viewer.get(f"{base}/exports"),
        viewer.get(f"{base}/exports/{made['id']}"),
        viewer.get(f"{base}/exports/{made['id']}/download"),
        viewer.delete(f"{base}/exports/{made['id']}"),
    ]
    assert [r.status_code for r in calls] == [403] * 5
    marketer = server.user_with_role(ws, "marketer")
    assert marketer.get(f"{base}/exports/{made['id']}/download").status_code == 200


def test_members_csv_and_the_csv_export_are_the_same_bytes(api):
    """The segment's streamed ``members.csv`` and the ``csv`` export neutralise alike."""
    _, owner, base, _, seg = api
    streamed = owner.get(f"{base}/segments/{seg}/members.csv")
    assert streamed.status_code == 200
    made = owner.post(f"{base}/exports", json={"segment_id": seg, "format": "csv"}).json()
    stored = owner.get(f"{base}/exports/{made['id']}/download").content
    assert stored == streamed.content
    names = {r[0]: r[2] for r in read_csv(stored)[1:]}
    assert names["c1"] == f"'{HYPERLINK} Jones" and names["c8"] == "'-2"


# -- the CLI ----------------------------------------------------------------------------------
def test_cli_creates_copies_lists_and_removes(tmp_path):
    import json

    from strata.cli_exports import app as exports_cli

    settings = duckdb_settings(tmp_path)
    with Strata(settings) as app:
        load_shop(app)
    env = {
        "STRATA_HOME": str(settings.home),
        "STRATA_DATABASE_URL": settings.database_url,
        "STRATA_WAREHOUSE_URL": settings.warehouse_url,
        "STRATA_WORKSPACE": "shop",
    }
    runner = CliRunner()
    copy = tmp_path / "out" / "klaviyo.csv"
    copy.parent.mkdir()
    made = runner.invoke(
        exports_cli,
        ["create", SEGMENT, "--format", "klaviyo", "--output", str(copy), "--json"],
        env=env,
    )
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    assert info["rows"] == 8 and read_csv(copy) == KLAVIYO
    assert Path(info["path"]).read_bytes() == copy.read_bytes()

    listed = runner.invoke(exports_cli, ["list", "--json"], env=env)
    assert [e["id"] for e in json.loads(listed.stdout)["exports"]] == [info["id"]]

    removed = runner.invoke(exports_cli, ["remove", str(info["id"])], env=env)
    assert removed.exit_code == 0 and not Path(info["path"]).exists()
    assert copy.exists()  # the copy is the user's
    again = runner.invoke(exports_cli, ["remove", str(info["id"])], env=env)
    assert isinstance(again.exception, NotFound)
