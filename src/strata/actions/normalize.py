"""Customer values in the exact form an ad platform matches on, one small function per rule.

Google Customer Match and Meta Custom Audiences match uploaded people on SHA-256 hashes,
so a value must be normalised *exactly* as the platform normalises its own before
hashing: one upper-case letter or a missing country code and the hash matches nobody.
The two platforms disagree in details, hence a function per platform where they do:

=========  ==================================================  ===========================
value      Google Customer Match                               Meta Custom Audiences
=========  ==================================================  ===========================
e-mail     trimmed, lower case, no spaces; gmail.com and       trimmed, lower case (dots
           googlemail.com lose every dot before the @          kept, also for Gmail)
phone      E.164 with its ``+``: ``+442079460958``             E.164 digits, no ``+``
first/     trimmed, lower case, inner spaces collapsed         lower case, letters only
last name  (accents and punctuation kept)                      (punctuation, digits and
                                                               spaces dropped; accents and
                                                               other scripts kept, UTF-8)
country    ISO 3166-1 alpha-2, upper case, not hashed          alpha-2, lower case, hashed
city       (not uploaded)                                      like a name: ``menlopark``
zip        as written, trimmed, not hashed                     lower case, no spaces, no
                                                               ``-``; US: the first 5 digits
=========  ==================================================  ===========================

Sources: Google Ads help "Formatting guidelines for uploading hashed data" and the Google
Ads API examples (``normalize_and_hash_email_address``); Meta's "Customer information
parameters" (its worked examples: ``Valéry`` → ``valéry``, ``(650)555-1212`` →
``16505551212``). An empty value stays empty and is never hashed (:func:`sha256_hex`).

Phones are read with the ``phonenumbers`` library: a number without ``+`` is read as a
number of the customer's country (else of ``default_region``); a number that cannot be
read, or whose length is impossible there, is left empty rather than guessed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from typing import Any

import phonenumbers

#: Domains whose mailboxes ignore dots before the @ (Google removes them before matching).
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

_SPACES = re.compile(r"\s+")


def text(value: Any) -> str:
    """A stored value as trimmed text; ``None`` is empty.

    >>> text("  Ada ")
    'Ada'
    >>> text(None)
    ''
    """
    return "" if value is None else str(value).strip()


def sha256_hex(value: str) -> str:
    """The SHA-256 hex digest of a normalised value; an empty value stays empty.

    A hash of "" would look like data in the file and match nobody, so it is never made.

    >>> sha256_hex("mary")
    '6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec'
    >>> sha256_hex("")
    ''
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest() if value else ""


# -- e-mail -----------------------------------------------------------------------------------
def _email(value: Any) -> str:
    """Trimmed, lower case, or empty when it is not ``something@something``."""
    mail = text(value).lower()
    local, at, domain = mail.rpartition("@")
    return mail if at and local and domain else ""


def meta_email(value: Any) -> str:
    """An e-mail as Meta matches it: trimmed and lower case; dots are kept, also for Gmail.

    >>> meta_email(" John_Smith@Gmail.com ")
    'john_smith@gmail.com'
    >>> meta_email("J.Doe@gmail.com")
    'j.doe@gmail.com'
    >>> meta_email("not an address")
    ''
    """
    return _email(value)


def google_email(value: Any) -> str:
    """An e-mail as Google matches it: trimmed, lower case, no spaces, and for gmail.com and
    googlemail.com addresses no dots before the @ (Gmail ignores them). A ``+tag`` is kept.

    >>> google_email(" John.Smith@Gmail.com")
    'johnsmith@gmail.com'
    >>> google_email("j.doe+news@googlemail.com")
    'jdoe+news@googlemail.com'
    >>> google_email("First.Last@Example.co.uk")
    'first.last@example.co.uk'
    """
    mail = _email(_SPACES.sub("", text(value)))
    local, _, domain = mail.rpartition("@")
    if domain in GMAIL_DOMAINS:
        return local.replace(".", "") + "@" + domain
    return mail


# -- places -----------------------------------------------------------------------------------
#: Country names and three-letter codes Strata recognises, beyond the two-letter codes
#: themselves (every region :mod:`phonenumbers` knows). Keys are compared lower case,
#: without punctuation; anything else is an unknown country (an empty cell).
_COUNTRY_NAMES: dict[str, str] = {
    **dict.fromkeys(["united states", "united states of america", "usa", "us", "america"], "US"),
    **dict.fromkeys(
        [
            "united kingdom",
            "uk",
            "gbr",
            "great britain",
            "britain",
            "england",
            "scotland",
            "wales",
            "northern ireland",
        ],
        "GB",
    ),
    **dict.fromkeys(["germany", "deutschland", "deu"], "DE"),
    **dict.fromkeys(["france", "fra"], "FR"),
    **dict.fromkeys(["spain", "espana", "españa", "esp"], "ES"),
    **dict.fromkeys(["italy", "italia", "ita"], "IT"),
    **dict.fromkeys(["netherlands", "the netherlands", "holland", "nld"], "NL"),
    **dict.fromkeys(["belgium", "bel"], "BE"),
    **dict.fromkeys(["switzerland", "schweiz", "suisse", "che"], "CH"),
    **dict.fromkeys(["austria", "österreich", "osterreich", "aut"], "AT"),
    **dict.fromkeys(["ireland", "eire", "irl", "republic of ireland"], "IE"),
    **dict.fromkeys(["portugal", "prt"], "PT"),
    **dict.fromkeys(["sweden", "swe"], "SE"),
    **dict.fromkeys(["norway", "nor"], "NO"),
    **dict.fromkeys(["denmark", "dnk"], "DK"),
    **dict.fromkeys(["finland", "fin"], "FI"),
    **dict.fromkeys(["iceland", "isl"], "IS"),
    **dict.fromkeys(["poland", "pol"], "PL"),
    **dict.fromkeys(["czech republic", "czechia", "cze"], "CZ"),
    **dict.fromkeys(["greece", "grc"], "GR"),
    **dict.fromkeys(["cyprus", "cyp"], "CY"),
    **dict.fromkeys(["malta", "mlt"], "MT"),
    **dict.fromkeys(["lithuania", "ltu"], "LT"),
    **dict.fromkeys(["hungary", "hun"], "HU"),
    **dict.fromkeys(["romania", "rou"], "RO"),
    **dict.fromkeys(["turkey", "türkiye", "turkiye", "tur"], "TR"),
    **dict.fromkeys(["russia", "russian federation", "rus"], "RU"),
    **dict.fromkeys(["ukraine", "ukr"], "UA"),
    **dict.fromkeys(["israel", "isr"], "IL"),
    **dict.fromkeys(["lebanon", "lbn"], "LB"),
    **dict.fromkeys(["saudi arabia", "sau"], "SA"),
    **dict.fromkeys(["united arab emirates", "uae", "are"], "AE"),
    **dict.fromkeys(["bahrain", "bhr"], "BH"),
    **dict.fromkeys(["canada", "can"], "CA"),
    **dict.fromkeys(["mexico", "méxico", "mex"], "MX"),
    **dict.fromkeys(["brazil", "brasil", "bra"], "BR"),
    **dict.fromkeys(["argentina", "arg"], "AR"),
    **dict.fromkeys(["chile", "chl"], "CL"),
    **dict.fromkeys(["colombia", "col"], "CO"),
    **dict.fromkeys(["australia", "aus"], "AU"),
    **dict.fromkeys(["new zealand", "nzl"], "NZ"),
    **dict.fromkeys(["japan", "jpn"], "JP"),
    **dict.fromkeys(["china", "chn"], "CN"),
    **dict.fromkeys(["hong kong", "hkg"], "HK"),
    **dict.fromkeys(["singapore", "sgp"], "SG"),
    **dict.fromkeys(["south korea", "korea", "republic of korea", "kor"], "KR"),
    **dict.fromkeys(["india", "ind"], "IN"),
    **dict.fromkeys(["south africa", "rsa", "zaf"], "ZA"),
    **dict.fromkeys(["nigeria", "nga"], "NG"),
    **dict.fromkeys(["egypt", "egy"], "EG"),
}


def country_code(value: Any) -> str:
    """A country as its ISO 3166-1 alpha-2 code (upper case), or empty if unknown.

    Two-letter codes are taken as they are (UK becomes GB); common English names and
    three-letter codes are recognised.

    >>> country_code("gb"), country_code("UK"), country_code("United States"), country_code("DEU")
    ('GB', 'GB', 'US', 'DE')
    >>> country_code("Atlantis")
    ''
    """
    raw = text(value)
    if len(raw) == 2 and raw.upper() in phonenumbers.SUPPORTED_REGIONS:
        return raw.upper()
    key = _SPACES.sub(" ", re.sub(r"[.,'()]", "", raw.lower())).strip()
    return _COUNTRY_NAMES.get(key, "")


def meta_country(value: Any) -> str:
    """A country as Meta matches it: the alpha-2 code in lower case.

    >>> meta_country("United Kingdom")
    'gb'
    """
    return country_code(value).lower()


def google_zip(value: Any) -> str:
    """A postal code for Google: as written, trimmed (Google reads it unhashed).

    >>> google_zip(" SW1A 1AA ")
    'SW1A 1AA'
    """
    return text(value)


def meta_zip(value: Any, country: Any = None) -> str:
    """A postal code as Meta matches it: lower case, no spaces, nothing from a ``-`` on;
    a US code keeps its first five digits.

    >>> meta_zip("SW1A 1AA", "GB")
    'sw1a1aa'
    >>> meta_zip("94025-1234", "US")
    '94025'
    """
    code = _SPACES.sub("", text(value).lower()).split("-")[0]
    if country_code(country) == "US":
        return code[:5]
    return code


def meta_city(value: Any) -> str:
    """A city as Meta matches it: lower case, letters only (no spaces or punctuation);
    accents and other scripts are kept.

    >>> meta_city("Menlo Park")
    'menlopark'
    >>> meta_city("São Paulo")
    'sãopaulo'
    """
    return meta_name(value)


# -- names ------------------------------------------------------------------------------------
def split_name(value: Any) -> tuple[str, str]:
    """A full name as (first, last): the first word, and the rest.

    Strata keeps one ``name``; the platforms want two. Splitting at the first space is
    right for most Western names and keeps every word: nothing is dropped.

    >>> split_name("Jean-Luc  de la Cruz")
    ('Jean-Luc', 'de la Cruz')
    >>> split_name("Cher")
    ('Cher', '')
    >>> split_name(None)
    ('', '')
    """
    words = text(value).split()
    return (words[0], " ".join(words[1:])) if words else ("", "")


def google_name(value: Any) -> str:
    """A first or last name as Google matches it: trimmed, lower case, inner spaces
    collapsed; accents and punctuation are kept (Google's own examples hash ``pérez``).

    >>> google_name("  De  la Cruz ")
    'de la cruz'
    >>> google_name("O'Brien")
    "o'brien"
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text(value)).lower())


def meta_name(value: Any) -> str:
    """A first or last name as Meta matches it: lower case, letters only: punctuation,
    digits and spaces go; accented letters and other scripts stay, in UTF-8 (NFC).

    >>> meta_name("Valéry")
    'valéry'
    >>> meta_name("O'Brien-Smith")
    'obriensmith'
    >>> meta_name("정")
    '정'
    """
    name = unicodedata.normalize("NFC", text(value)).lower()
    return "".join(ch for ch in name if unicodedata.category(ch)[0] in "LM")


# -- phones -----------------------------------------------------------------------------------
def region(country: Any = None, default_region: str | None = None) -> str | None:
    """The region a phone number without ``+`` is read in: the customer's country, else
    ``default_region``, else none (such a number is then left empty).

    >>> region("Germany", "GB"), region(None, "GB"), region("Atlantis")
    ('DE', 'GB', None)
    """
    return country_code(country) or country_code(default_region) or None


def e164(value: Any, country: Any = None, default_region: str | None = None) -> str:
    """A phone number in E.164 (``+`` and up to 15 digits), or empty if it cannot be read.

    >>> e164("020 7946 0958", "GB")
    '+442079460958'
    >>> e164("+1 (650) 555-1212", "DE")
    '+16505551212'
    >>> e164("555 1212"), e164("not a phone", "US")
    ('', '')
    """
    raw = text(value)
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region(country, default_region))
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def google_phone(value: Any, country: Any = None, default_region: str | None = None) -> str:
    """A phone as Google matches it: E.164 with the leading ``+``.

    >>> google_phone("(650) 555-1212", "US")
    '+16505551212'
    """
    return e164(value, country, default_region)


def meta_phone(value: Any, country: Any = None, default_region: str | None = None) -> str:
    """A phone as Meta matches it: digits only, country code first, no ``+`` and no
    leading zeros.

    >>> meta_phone("(650)555-1212", "US")
    '16505551212'
    >>> meta_phone("0049 30 1234567", "DE")
    '49301234567'
    """
    return e164(value, country, default_region).removeprefix("+")


# -- other attributes -------------------------------------------------------------------------
def meta_gender(value: Any) -> str:
    """A gender as Meta matches it: ``f`` or ``m``; anything else is left empty.

    >>> meta_gender("Female"), meta_gender("m"), meta_gender("nonbinary")
    ('f', 'm', '')
    """
    g = text(value).lower()
    if g in {"f", "female", "woman", "w"}:
        return "f"
    if g in {"m", "male", "man"}:
        return "m"
    return ""


def meta_birth_year(value: Any) -> str:
    """The year of a birth date as Meta matches it (``doby``): four digits, or empty.

    >>> meta_birth_year(dt.date(1980, 5, 17)), meta_birth_year("1975-01-02"), meta_birth_year("")
    ('1980', '1975', '')
    """
    if isinstance(value, dt.date):
        return f"{value.year:04d}"
    match = re.match(r"(\d{4})(?:-|$)", text(value))
    return match.group(1) if match else ""
