"""A deterministic synthetic business: an online shop with consumers and B2B accounts.

:func:`generate_business` draws customers, their events and order lines, and the
hidden truth (who churned, which behavioural archetype each customer was given), all
with numpy arrays and Arrow compute kernels: there is no Python loop over customers
or events, only over small vocabularies (products, countries, months, personas).

The model
---------
*Clock.* The period is the ``years`` before the end of ``end`` (UTC, naive timestamps).
Each kind of activity follows an hourly intensity profile over the period: a month
factor (November and December high, January and February low), Black Friday to Cyber
Monday and the Boxing Day sales, a weekday and an hour-of-day rhythm (evenings for
shoppers, office hours for businesses and support, mornings for e-mail). The profile
is integrated into a cumulative intensity ``Λ(t)`` measured in average days, so that
an activity with a rate of ``r`` per day happens ``Poisson(r·(Λ(b)-Λ(a)))`` times in
``[a, b)`` and its times are drawn by inverting ``Λ`` (piecewise linear, exact).

*Acquisition.* Signup instants follow the shopping profile times exponential growth
(the last month acquires about three times as many customers as the first), so
monthly cohorts grow and are larger in the holiday season. Customer numbers
(``C0000001`` …) follow signup order.

*Personas.* Every customer gets one archetype (see ``PERSONAS``): ``vip``, ``regular``,
``bargain_hunter`` (shops on sales, gets coupons, picks cheap products, returns
more), ``one_time`` (exactly one order, at signup), ``window_shopper`` (browses,
rarely buys) and ``b2b_account`` (a company buying in packs during office hours,
with ``company_size`` and ``industry``). On top of the persona, a log-normal
activity multiplier makes customers of one persona differ: together with the
persona mix, the time since signup and B2B pack quantities this gives the Pareto
shape of spend (the top 20 % of customers bring about 80 % of the revenue).

*Sessions.* A customer's visits are sessions: the first at signup, later ones a
Poisson process on their persona's profile. A session is 1 + Poisson page views,
then add-to-carts, then possibly an order, seconds to minutes apart. The products
added to the cart of a converting session are the order's lines (the same product
twice becomes one line with the summed quantity); products are drawn from a Zipf
popularity over a catalogue of a few hundred products, tilted to cheap products for
bargain hunters, to dear ones for VIPs and to office supplies for businesses.
Unit prices are list prices less sale, coupon and volume discounts, in cents; an
order's revenue is the sum of its lines. A few percent of orders (more for bargain
hunters) are refunded days later, entirely or one line, before the customer leaves.

*E-mail and support.* Subscribed customers open campaign e-mails (a Poisson process
on the e-mail profile); support tickets arrive at a low base rate on office hours.

*Churn.* Each customer has a lifetime of 14 days plus an exponential whose mean
depends on the persona (short for one-time buyers and window shoppers, long for VIPs
and businesses) and grows with the activity multiplier. If signup plus lifetime falls
inside the period the customer churned at that instant: nothing of theirs happens
afterwards, their sessions and e-mail opens thin out over the 60 days before, and
many of them file a support ticket shortly before leaving, so recency, frequency
and tickets predict churn. The others keep visiting until the end. About a third
of customers churn.

*Identifiers.* Customers are ``C0000001`` … in signup order, orders ``O00000001`` …
in time order; a refund's ``order_id`` is ``R`` and the refunded order's id
(``RO00000042``). ``event_key`` is ``order:<order_id>``, ``refund:<order_id>`` or
``<event_type>:<row number>`` (1-based, in time order). Keys are stable for equal
arguments only: another ``end``, ``years``, ``customers`` or ``seed`` puts other
events under the same keys, so load such a business into a workspace of its own.

Determinism: everything comes from one ``numpy.random.default_rng(seed)`` stream in a
fixed order, so equal arguments give equal tables (with the same numpy version).

Measured with ``/usr/bin/time -v`` on a 2-core machine (numpy 2.4, pyarrow 26, Python
3.11): ``generate_business(1_000_000, end=date(2026, 6, 30))`` takes 11-13 s (12-14 s
for the whole process) with a peak resident memory of 2.0 GB, 1.4 GB of which are the
returned tables: 10.3 million events (10.3 per customer), 0.97 million orders with
1.56 million lines; the top 20 % of customers bring 79 % of net revenue; 35 % churn.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.warehouse.base import Batch

__all__ = ["EVENT_TYPES", "PERSONAS", "generate_business"]

DAY_S = 86_400
HOUR_S = 3_600
US = 1_000_000

EVENT_TYPES = ("page_view", "add_to_cart", "order", "refund", "email_open", "support_ticket")
PAGE_VIEW, ADD_TO_CART, ORDER, REFUND, EMAIL_OPEN, SUPPORT_TICKET = range(6)

# -- personas ----------------------------------------------------------------------------
# One row per persona; the columns are what makes the archetypes behave differently.
PERSONAS = ("vip", "regular", "bargain_hunter", "one_time", "window_shopper", "b2b_account")
VIP, REGULAR, BARGAIN, ONE_TIME, WINDOW, B2B = range(6)
# fmt: off
#                              vip    regular bargain one_time window  b2b
_SHARE =            np.array([0.05,   0.24,   0.17,   0.25,    0.22,   0.07])
_SESSIONS_PER_DAY = np.array([0.028,  0.010,  0.008,  0.0015,  0.006,  0.009])  # after signup
_ACTIVITY_SIGMA =   np.array([0.5,    0.8,    0.7,    0.5,     0.8,    0.9])  # spread in persona
_FIRST_CONVERSION = np.array([0.8,    0.6,    0.5,    1.0,     0.03,   0.5])  # signup session
_CONVERSION =       np.array([0.35,   0.24,   0.18,   0.0,     0.01,   0.35])  # later sessions
_EXTRA_LINES =      np.array([1.0,    0.5,    0.6,    0.4,     0.3,    1.2])  # lines beyond one
_ABANDON =          np.array([0.25,   0.25,   0.35,   0.10,    0.30,   0.15])  # carts left behind
_PAGE_VIEWS =       np.array([0.9,    0.75,   0.9,    0.6,     1.0,    0.4])  # beyond one
_MEAN_LIFE_DAYS =   np.array([3500.0, 1400.0, 800.0,  250.0,   650.0,  2500.0])
_EMAIL_PER_DAY =    np.array([0.022,  0.011,  0.018,  0.005,   0.011,  0.0045])
_TICKETS_PER_DAY =  np.array([0.0004, 0.0002, 0.00025, 0.00015, 0.00005, 0.0006])
_REFUND_RATE =      np.array([0.02,   0.03,   0.07,   0.05,    0.05,   0.01])
_UNHAPPY =          np.array([0.35,   0.25,   0.22,   0.12,    0.05,   0.3])  # complain, then churn
_PLANS = ("free", "basic", "pro", "business")
_PLAN_P = np.array([
    [0.05, 0.25, 0.60, 0.10],  # vip
    [0.35, 0.40, 0.22, 0.03],  # regular
    [0.60, 0.30, 0.09, 0.01],  # bargain_hunter
    [0.80, 0.17, 0.03, 0.00],  # one_time
    [0.75, 0.20, 0.05, 0.00],  # window_shopper
    [0.00, 0.15, 0.35, 0.50],  # b2b_account
])

# Intensity profiles: which clock each activity runs on.
SHOP, DEAL, OFFICE, EMAIL = range(4)
_PERSONA_PROFILE = np.array([SHOP, SHOP, DEAL, SHOP, SHOP, OFFICE])
# Which row of the catalogue's taste each persona shops by: popular, cheap, dear, business.
_TASTE = np.array([2, 0, 1, 0, 0, 3])
_FADE_S = 60 * DAY_S  # churners thin out over this long before leaving
_COMPLAINT_S = 45 * DAY_S  # window of the complaints before churn

# Rhythms: factor by month (index 1-12), weekday (Monday first) and UTC hour.
_MONTH_F = np.array([0, 0.85, 0.80, 0.95, 0.95, 1.0, 0.95, 0.95, 0.95, 1.0, 1.05, 1.45, 1.6])
_SHOP_WEEKDAY = np.array([1.05, 1.0, 1.0, 1.0, 0.95, 0.9, 1.1])
_SHOP_HOUR = np.array([0.35, 0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.55, 0.75, 0.9, 1.0, 1.05,
                       1.1, 1.1, 1.05, 1.0, 1.05, 1.15, 1.3, 1.45, 1.5, 1.4, 1.05, 0.65])
_OFFICE_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.12, 0.08])
_OFFICE_HOUR = np.array([0.05] * 7 + [0.4] + [1.0] * 10 + [0.4] + [0.05] * 5)
_EMAIL_WEEKDAY = np.array([0.9, 1.5, 1.0, 1.5, 0.9, 0.6, 0.6])  # campaigns go out Tue and Thu
_EMAIL_HOUR = np.array([0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 1.8, 1.8, 1.5, 1.2, 1.2,
                        1.1, 1.0, 0.9, 0.9, 1.0, 1.1, 1.2, 1.1, 0.9, 0.6, 0.35])


# -- vocabularies ------------------------------------------------------------------------
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# ISO code, share of customers, calling code, national digits, cities (most populous first).
_COUNTRIES: tuple[tuple[str, float, str, int, tuple[str, ...]], ...] = (
    ("US", 0.38, "+1", 10, ("New York", "Los Angeles", "Chicago", "Houston", "Phoenix",
                            "Philadelphia", "San Antonio", "San Diego", "Dallas", "Austin",
                            "Seattle", "Denver", "Boston", "Miami", "Atlanta")),
    ("GB", 0.10, "+44", 10, ("London", "Manchester", "Birmingham", "Leeds", "Glasgow",
                             "Liverpool", "Bristol", "Edinburgh")),
    ("DE", 0.08, "+49", 10, ("Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt",
                             "Stuttgart", "Düsseldorf", "Leipzig")),
    ("CA", 0.07, "+1", 10, ("Toronto", "Montreal", "Vancouver", "Calgary", "Ottawa",
                            "Edmonton")),
    ("FR", 0.06, "+33", 9, ("Paris", "Marseille", "Lyon", "Toulouse", "Nice", "Nantes",
                            "Bordeaux", "Lille")),
    ("AU", 0.05, "+61", 9, ("Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide")),
    ("NL", 0.03, "+31", 9, ("Amsterdam", "Rotterdam", "The Hague", "Utrecht", "Eindhoven")),
    ("ES", 0.03, "+34", 9, ("Madrid", "Barcelona", "Valencia", "Seville", "Bilbao")),
    ("IT", 0.03, "+39", 10, ("Rome", "Milan", "Naples", "Turin", "Florence", "Bologna")),
    ("BR", 0.03, "+55", 11, ("São Paulo", "Rio de Janeiro", "Belo Horizonte", "Brasília",
                             "Curitiba")),
    ("IN", 0.03, "+91", 10, ("Mumbai", "Delhi", "Bengaluru", "Hyderabad", "Chennai", "Pune")),
    ("MX", 0.025, "+52", 10, ("Mexico City", "Guadalajara", "Monterrey", "Puebla")),
    ("SE", 0.02, "+46", 9, ("Stockholm", "Gothenburg", "Malmö", "Uppsala")),
    ("JP", 0.02, "+81", 10, ("Tokyo", "Osaka", "Yokohama", "Nagoya", "Sapporo")),
    ("IE", 0.015, "+353", 9, ("Dublin", "Cork", "Galway", "Limerick")),
    ("PL", 0.015, "+48", 9, ("Warsaw", "Kraków", "Wrocław", "Gdańsk")),
    ("BE", 0.015, "+32", 9, ("Brussels", "Antwerp", "Ghent", "Liège")),
    ("CH", 0.01, "+41", 9, ("Zurich", "Geneva", "Basel", "Bern")),
    ("DK", 0.01, "+45", 8, ("Copenhagen", "Aarhus", "Odense")),
    ("NZ", 0.01, "+64", 9, ("Auckland", "Wellington", "Christchurch")),
)
_FEMALE = _words(
    "Emma Olivia Ava Sophia Isabella Mia Amelia Harper Evelyn Abigail Emily Charlotte Ella "
    "Grace Chloe Lily Hannah Zoe Nora Leah Sofia Camila Lucia Valentina Aisha Fatima Priya "
    "Ananya Yuki Sakura Mei Ingrid Freya Astrid Clara Marie Julia Lena Anna Laura Sara Elena "
    "Giulia Chiara Manon Camille Ines Maya Nina Olga"
)
_MALE = _words(
    "Liam Noah Oliver Elijah James William Benjamin Lucas Henry Alexander Mason Michael Ethan "
    "Daniel Jacob Logan Jackson Sebastian Jack Leo Mateo Santiago Diego Carlos Luca Marco "
    "Matteo Louis Hugo Arthur Lukas Felix Jonas Elias Erik Oscar Raj Arjun Rohan Kenji "
    "Hiroshi Wei Omar Yusuf Ali Thomas David Samuel Gabriel Pablo"
)
_UNISEX = _words("Alex Jordan Taylor Casey Riley Morgan Avery Quinn Jamie Rowan Sage Charlie "
                 "Robin Kai")
_LAST = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
    "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres "
    "Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts "
    "Muller Schmidt Schneider Fischer Weber Meyer Wagner Becker Dubois Moreau Laurent Bernard "
    "Rossi Russo Ferrari Esposito Bianchi Romano Silva Santos Oliveira Souza Kumar Sharma "
    "Patel Singh Tanaka Suzuki Sato Watanabe Kowalski Nowak Jansen Visser Andersson Johansson "
    "Murphy Kelly Byrne Walsh Novak Larsen Nielsen"
)
_MAIL_DOMAINS = _words("gmail.com yahoo.com outlook.com hotmail.com icloud.com proton.me "
                       "aol.com gmx.net live.com mail.com")
_MAIL_P = np.array([0.42, 0.10, 0.11, 0.08, 0.14, 0.04, 0.02, 0.04, 0.03, 0.02])
_COMPANY_A = _words("acme blue north bright summit river cedar harbor nova pioneer atlas "
                    "silver granite maple vertex orbit lumen crest prairie coastal")
_COMPANY_B = _words("labs works systems logistics foods studio partners group digital supply "
                    "health consulting design energy")
_INDUSTRIES = ("Retail", "Software", "Hospitality", "Healthcare", "Education", "Manufacturing",
               "Professional Services", "Construction", "Nonprofit", "Media", "Finance",
               "Logistics")
_INDUSTRY_P = np.array([0.16, 0.14, 0.12, 0.09, 0.07, 0.08, 0.11, 0.06, 0.05, 0.04, 0.04, 0.04])
# Company size bands (employees) and how common they are among business customers.
_SIZE_BANDS = np.array([[1, 1], [2, 10], [11, 50], [51, 200], [201, 1000], [1001, 50_000]])
_SIZE_P = np.array([0.18, 0.36, 0.23, 0.12, 0.07, 0.04])
_GENDERS = ("female", "male", "nonbinary")
_GENDER_P = np.array([0.48, 0.45, 0.02, 0.05])  # the last is "not given"

# Catalogue: category, median list price, adjectives, nouns (comma separated) and how much
# more businesses buy of it than consumers do.
_CATEGORIES: tuple[tuple[str, float, str, str, float], ...] = (
    ("Apparel", 35.0, "Classic Organic Relaxed Slim Vintage Everyday Heavyweight Linen",
     "T-Shirt, Hoodie, Sweater, Jeans, Shirt, Jacket, Joggers, Dress", 0.3),
    ("Footwear", 85.0, "Trail Classic Canvas Leather Running Waterproof",
     "Sneakers, Boots, Sandals, Loafers, Slippers", 0.2),
    ("Accessories", 25.0, "Leather Woven Minimal Recycled Travel Canvas",
     "Wallet, Belt, Cap, Scarf, Tote, Backpack, Sunglasses", 0.5),
    ("Home & Kitchen", 30.0, "Ceramic Stoneware Bamboo Cast-Iron Glass Copper",
     "Mug, Bowl, Skillet, Teapot, Vase, Cutting Board, Candle", 1.0),
    ("Beauty", 22.0, "Hydrating Gentle Vitamin-C Daily Overnight Botanical",
     "Cleanser, Serum, Moisturiser, Lip Balm, Shampoo, Hand Cream", 0.3),
    ("Electronics", 120.0, "Wireless Portable Smart Compact Pro Noise-Cancelling",
     "Headphones, Speaker, Charger, Keyboard, Mouse, Webcam, Lamp", 2.5),
    ("Outdoor", 60.0, "Ultralight Insulated Packable All-Weather Trail",
     "Tent, Bottle, Sleeping Bag, Daypack, Headlamp, Jacket", 0.4),
    ("Office", 15.0, "Recycled Premium Ergonomic Refillable Dotted Stackable",
     "Notebook, Pen Set, Desk Organiser, Stapler, Paper Ream, Binder, Whiteboard", 8.0),
    ("Coffee & Tea", 16.0, "Single-Origin Organic Dark-Roast Decaf Green Chai",
     "Coffee Beans, Ground Coffee, Tea Tin, Cold Brew, Espresso Pods, Mug Set", 3.0),
)
_N_PRODUCTS = 320
_ZIPF_S = 1.05  # popularity of the product of rank r is proportional to 1 / r ** _ZIPF_S
# Pack sizes businesses order in.
_PACKS = np.array([1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 25, 30, 40, 50, 60, 75, 100, 120,
                   150, 200, 250, 300, 500, 750, 1000])
_CHANNELS = ("web", "app", "store")
_CHANNEL_P = np.array([[0.62, 0.30, 0.08],   # consumers
                       [0.92, 0.03, 0.05]])  # businesses
_REFUND_REASONS = ("damaged", "wrong_size", "not_as_described", "changed_mind", "late_delivery")
_REFUND_REASON_P = np.array([0.2, 0.25, 0.2, 0.25, 0.1])
_TOPICS = ("delivery", "billing", "returns", "product_question", "account", "technical")
_TOPIC_P = np.array([[0.25, 0.15, 0.15, 0.25, 0.12, 0.08],   # any time
                     [0.30, 0.25, 0.25, 0.05, 0.10, 0.05]])  # shortly before churning
_PRIORITIES = ("low", "normal", "high", "urgent")
_PRIORITY_P = np.array([[0.30, 0.50, 0.15, 0.05],
                        [0.05, 0.35, 0.40, 0.20]])
_CAMPAIGNS = ("newsletter", "new-arrivals", "back-in-stock", "sale")
_PAGES = ("/", "/cart", "/account", "/search", "/blog/gift-guide", "/blog/care-tips",
          "/pages/shipping", "/pages/returns")
# fmt: on


# -- the clock ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Clock:
    """Hourly intensity profiles over the period; times are seconds from its start."""

    start_s: int  # Unix seconds of the period's start
    span_s: int
    edges: np.ndarray  # (hours + 1,) hour boundaries, seconds from start
    cum: np.ndarray  # (profiles, hours + 1) cumulative intensity in average days
    signup_cum: np.ndarray  # (hours + 1,) cumulative acquisition intensity, 0 … 1
    first_day: int  # Unix day of the period's first day
    sale: np.ndarray  # bool per day from first_day: storewide sale

    def at(self, profile: int, t: np.ndarray) -> np.ndarray:
        """Λ(t) of ``profile``."""
        return np.interp(t, self.edges, self.cum[profile])

    def invert(self, profile: int, v: np.ndarray) -> np.ndarray:
        """The time at which Λ of ``profile`` reaches ``v``."""
        return np.interp(v, self.cum[profile], self.edges)

    def is_sale(self, t: np.ndarray) -> np.ndarray:
        return self.sale[(self.start_s + t) // DAY_S - self.first_day]


def _clock(start_s: int, span_s: int) -> _Clock:
    hours = math.ceil(span_s / HOUR_S)
    edges = np.minimum(np.arange(hours + 1, dtype=np.int64) * HOUR_S, span_s)
    width = np.diff(edges).astype(np.float64)
    mid = start_s + (edges[:-1] + edges[1:]) // 2  # Unix seconds
    day = mid // DAY_S
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    hour = (mid // HOUR_S) % 24
    month_no = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    month = month_no % 12 + 1
    dom = day - month_no.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + 1
    year = month_no // 12 + 1970

    # Black Friday: the day after the fourth Thursday of November.
    nov1 = (
        ((year - 1970) * 12 + 10).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    )
    black_friday = nov1 + (3 - (nov1 + 3) % 7) % 7 + 22
    cyber_week = (day >= black_friday - 3) & (day <= black_friday + 3)
    boxing = (month == 12) & (dom >= 26)
    summer_sale = (month == 7) & (dom >= 8) & (dom <= 14)
    christmas = (month == 12) & (dom >= 24) & (dom <= 25)
    sale = cyber_week | boxing | summer_sale

    seasonal = _MONTH_F[month] * np.where(cyber_week, 2.2, 1.0) * np.where(christmas, 0.5, 1.0)
    shop = seasonal * _SHOP_WEEKDAY[weekday] * _SHOP_HOUR[hour]
    # Bargain hunters wait for the sales.
    deal = seasonal**1.5 * np.where(sale, 3.0, 1.0) * _SHOP_WEEKDAY[weekday] * _SHOP_HOUR[hour]
    office = (
        _OFFICE_WEEKDAY[weekday]
        * _OFFICE_HOUR[hour]
        * np.where(christmas | ((month == 12) & (dom >= 27)), 0.3, 1.0)
        * np.where(month == 8, 0.85, 1.0)
    )
    email = (
        np.where(month >= 11, 1.35, 1.0)
        * np.where(cyber_week, 1.8, 1.0)
        * _EMAIL_WEEKDAY[weekday]
        * _EMAIL_HOUR[hour]
    )
    weights = np.stack([shop, deal, office, email]) * width
    cum = np.concatenate([np.zeros((4, 1)), np.cumsum(weights, axis=1)], axis=1)
    cum *= (span_s / DAY_S) / cum[:, -1:]  # Λ over the whole period = its length in days

    # Acquisition: the shopping rhythm times growth to about 3x by the end.
    growth = np.exp(np.log(3.0) * (edges[:-1] + edges[1:]) / (2 * span_s))
    signup = np.concatenate([[0.0], np.cumsum(shop * growth * width)])
    signup /= signup[-1]

    first_day = start_s // DAY_S
    last_day = (start_s + span_s) // DAY_S
    sale_by_day = np.zeros(last_day - first_day + 1, dtype=bool)
    sale_by_day[day[sale] - first_day] = True
    return _Clock(
        start_s, span_s, edges.astype(np.float64), cum, signup, int(first_day), sale_by_day
    )


# -- small helpers -----------------------------------------------------------------------
def _draw(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn from the distribution ``p``."""
    cdf = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(p) - 1)


def _draw_by(rng: np.random.Generator, table: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Indices drawn from the distribution in row ``group[i]`` of ``table``, for each i."""
    cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(group))
    out = np.empty(len(group), dtype=np.int64)
    for g in range(len(table)):  # a handful of groups, each drawn in one go
        mask = group == g
        out[mask] = np.searchsorted(cdf[g], u[mask], side="right")
    return np.minimum(out, table.shape[1] - 1)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` followed by ``numbers`` zero-padded to ``width`` digits."""
    digits = pc.utf8_lpad(
        pc.cast(pa.array(numbers, pa.int64()), pa.string()), width=width, padding="0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def _strings(values: list[str] | tuple[str, ...]) -> pa.Array:
    return pa.array(list(values), pa.string())


def _take(values: pa.Array, index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``values[index]``, null where ``valid`` is false."""
    idx = pa.array(index.astype(np.int32), mask=None if valid is None else ~valid)
    return pc.take(values, idx)


def _group_starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _rank_within(group: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """0-based position of each row within its group (rows sorted by group)."""
    return np.arange(len(group)) - np.repeat(_group_starts(counts), counts)


def _to_timestamps(start_s: int, t: np.ndarray) -> np.ndarray:
    return ((start_s + t) * US).astype("datetime64[us]")


# -- catalogue ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Catalogue:
    ids: pa.Array
    names: pa.Array
    slugs: list[str]
    categories: list[str]
    category: np.ndarray  # category index per product
    price_cents: np.ndarray
    taste: np.ndarray  # (4, products) choice probabilities: popular, cheap, dear, business


def _catalogue(rng: np.random.Generator) -> _Catalogue:
    names: list[str] = []
    category: list[int] = []
    for c, (_, _, adjectives, nouns, _) in enumerate(_CATEGORIES):
        for a in adjectives.split():
            for noun in nouns.split(", "):
                names.append(f"{a} {noun}")
                category.append(c)
    pick = np.sort(rng.choice(len(names), size=_N_PRODUCTS, replace=False))
    names_arr = [names[i] for i in pick]
    cat = np.array(category)[pick]
    median = np.array([c[1] for c in _CATEGORIES])[cat]
    price = np.exp(np.log(median) + rng.normal(0.0, 0.45, len(pick)))
    # Shop prices end in .99 or .00.
    price_cents = np.where(
        rng.random(len(pick)) < 0.7,
        np.maximum(np.floor(price), 1) * 100 + 99,
        np.maximum(np.round(price), 2) * 100,
    ).astype(np.int64)
    rank = rng.permutation(len(pick))
    popular = 1.0 / (rank + 1.0) ** _ZIPF_S
    b2b_weight = np.array([c[4] for c in _CATEGORIES])[cat]
    taste = np.stack(
        [
            popular,
            popular * (price_cents / 100.0) ** -1.0,  # bargain hunters
            popular * (price_cents / 100.0) ** 0.5,  # VIPs
            popular * b2b_weight,  # businesses
        ]
    )
    taste /= taste.sum(axis=1, keepdims=True)
    slugs = [_slug(n) for n in names_arr]
    return _Catalogue(
        ids=_ids("P", np.arange(1, len(pick) + 1), 4),
        names=_strings(names_arr),
        slugs=slugs,
        categories=[c[0] for c in _CATEGORIES],
        category=cat,
        price_cents=price_cents,
        taste=taste,
    )


# -- customers ---------------------------------------------------------------------------
@dataclass
class _People:
    n: int
    persona: np.ndarray
    signup: np.ndarray  # seconds from start
    leave: np.ndarray  # end of activity: churn instant or the period's end
    churned: np.ndarray
    activity: np.ndarray  # log-normal multiplier of visit rates, mean 1
    company_size: np.ndarray  # employees (drawn for everyone, used for businesses)


def _people(rng: np.random.Generator, n: int, clock: _Clock) -> _People:
    persona = _draw(rng, _SHARE, n)
    signup = np.sort(np.interp(rng.random(n), clock.signup_cum, clock.edges))
    signup = np.minimum(np.floor(signup), clock.span_s - 1).astype(np.int64)
    sigma = _ACTIVITY_SIGMA[persona]
    activity = np.exp(sigma * rng.standard_normal(n) - sigma**2 / 2)
    # Lifetimes: more active customers stay longer.
    mean_life = _MEAN_LIFE_DAYS[persona] * np.sqrt(activity)
    life = np.floor((14 + rng.exponential(mean_life)) * DAY_S).astype(np.int64)
    churn_at = signup + life
    churned = churn_at < clock.span_s
    leave = np.where(churned, churn_at, clock.span_s)
    band = _draw(rng, _SIZE_P, n)
    lo, hi = _SIZE_BANDS[band, 0], _SIZE_BANDS[band, 1]
    # Log-uniform within a band; the top band has a long tail (x ** 3 keeps most near 1000).
    u = np.where(band == len(_SIZE_BANDS) - 1, rng.random(n) ** 3, rng.random(n))
    size = np.floor(np.exp(np.log(lo) + u * (np.log(hi + 1) - np.log(lo)))).astype(np.int64)
    size = np.clip(size, lo, hi)
    return _People(n, persona, signup, leave, churned, activity, size)


def _customer_table(
    rng: np.random.Generator, people: _People, clock: _Clock, ids: pa.Array
) -> pa.Table:
    n = people.n
    b2b = people.persona == B2B
    serial = np.arange(1, n + 1)

    country = _draw(rng, np.array([c[1] for c in _COUNTRIES]), n)
    n_cities = np.array([len(c[4]) for c in _COUNTRIES])
    city_p = np.zeros((len(_COUNTRIES), n_cities.max()))
    for i, k in enumerate(n_cities):  # Zipf-like city sizes
        city_p[i, :k] = 1.0 / np.arange(1, k + 1) ** 0.8
    city = _draw_by(rng, city_p, country) + _group_starts(n_cities)[country]
    cities = _strings([name for c in _COUNTRIES for name in c[4]])

    gender = _draw(rng, _GENDER_P, n)  # 3 = not given
    pools = (_FEMALE, _MALE, _UNISEX, _FEMALE + _MALE + _UNISEX)
    pool_len = np.array([len(p) for p in pools])
    pool_start = _group_starts(pool_len)
    first = pool_start[gender] + np.floor(rng.random(n) * pool_len[gender]).astype(np.int64)
    first_names = _strings([x for p in pools for x in p])
    last = np.floor(rng.random(n) * len(_LAST)).astype(np.int64)
    first_s, last_s = _take(first_names, first), _take(_strings(_LAST), last)
    name = pc.binary_join_element_wise(first_s, last_s, " ")

    # E-mail: a name pattern and the customer's serial (names have no digits, so the
    # address is unique), at a mail provider or, for businesses, the company's domain.
    pattern = _draw(rng, np.array([0.45, 0.2, 0.2, 0.15]), n)
    first_l, last_l = pc.utf8_lower(first_s), pc.utf8_lower(last_s)
    head = pc.if_else(pa.array(pattern == 3), pc.utf8_slice_codeunits(first_l, 0, 1), first_l)
    sep = _take(_strings([".", "_", "", "."]), pattern)
    local = pc.binary_join_element_wise(
        head, sep, last_l, pc.cast(pa.array(serial), pa.string()), ""
    )
    companies = [
        f"{a}{b}.{'io' if (i + j) % 4 == 0 else 'com'}"
        for i, a in enumerate(_COMPANY_A)
        for j, b in enumerate(_COMPANY_B)
    ]
    mail = _draw(rng, _MAIL_P, n)
    company = np.floor(rng.random(n) * len(companies)).astype(np.int64)
    domain = np.where(b2b, len(_MAIL_DOMAINS) + company, mail)
    email = pc.binary_join_element_wise(
        local, _take(_strings(_MAIL_DOMAINS + tuple(companies)), domain), "@"
    )

    digits = np.array([c[3] for c in _COUNTRIES])[country]
    scale = 10 ** (digits - 1)
    national = rng.integers(2, 10, n) * scale + np.floor(rng.random(n) * scale).astype(np.int64)
    phone = pc.binary_join_element_wise(
        _take(_strings([c[2] for c in _COUNTRIES]), country),
        pc.cast(pa.array(national), pa.string()),
        "",
    )

    # Adults: at least 18 at signup and at most 80 at the end, most of them 25-45.
    end_day = (clock.start_s + clock.span_s) // DAY_S
    years_in = (clock.span_s - people.signup) / (365.25 * DAY_S)
    low = np.minimum(18.0 + years_in, 80.0)
    age_at_end = low + (80.0 - low) * rng.beta(2.0, 4.0, n)
    birth = (end_day - np.floor(age_at_end * 365.25)).astype("datetime64[D]")
    birth_known = rng.random(n) >= 0.12
    signup_date = ((clock.start_s + people.signup) // DAY_S).astype("datetime64[D]")

    industry = _draw(rng, _INDUSTRY_P, n)
    plan = _draw_by(rng, _PLAN_P, people.persona)

    return pa.table(
        {
            "external_id": ids,
            "email": email,
            "name": name,
            "phone": phone,
            "country": _take(_strings([c[0] for c in _COUNTRIES]), country),
            "city": _take(cities, city),
            "gender": _take(_strings(_GENDERS), np.minimum(gender, 2), gender < 3),
            "birth_date": pa.array(birth, pa.date32(), mask=~birth_known),
            "signup_date": pa.array(signup_date, pa.date32()),
            "company_size": pa.array(people.company_size, pa.int64(), mask=~b2b),
            "industry": _take(_strings(_INDUSTRIES), industry, b2b),
            "plan": _take(_strings(_PLANS), plan),
        }
    )


# -- events ------------------------------------------------------------------------------
@dataclass
class _Events:
    """Events before sorting, as seconds from the period's start."""

    cust: np.ndarray | None  # int32 customer index
    kind: np.ndarray | None  # int8, index into EVENT_TYPES
    t: np.ndarray | None  # int64 seconds
    prop: np.ndarray | None  # int32 index into the properties vocabulary
    cents: np.ndarray | None = None  # int64 revenue of orders and refunds
    ref: np.ndarray | None = None  # int32 order index of orders and refunds


def _concat(parts: list[_Events]) -> _Events:
    def column(name: str, dtype: type, fill: int) -> np.ndarray:
        return np.concatenate(
            [
                np.full(len(p.t), fill, dtype)
                if getattr(p, name) is None
                else getattr(p, name).astype(dtype, copy=False)
                for p in parts
            ]
        )

    return _Events(
        column("cust", np.int32, 0),
        column("kind", np.int8, 0),
        column("t", np.int64, 0),
        column("prop", np.int32, 0),
        column("cents", np.int64, 0),
        column("ref", np.int32, -1),
    )


@dataclass
class _Lines:
    """Order lines: order index, product, quantity and unit price in cents."""

    order: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_cents: np.ndarray


def _poisson_times(
    rng: np.random.Generator, clock: _Clock, people: _People, profile: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A Poisson process of ``rate`` per day on each customer's profile during their life.

    Returns the customer and the time (whole seconds in ``[signup, leave)``) of every
    occurrence.
    """
    lam_a = np.empty(people.n)
    lam_b = np.empty(people.n)
    profiles = np.unique(profile)
    for p in profiles:  # a few clocks, each evaluated in one go
        m = profile == p
        lam_a[m] = clock.at(p, people.signup[m])
        lam_b[m] = clock.at(p, people.leave[m])
    count = rng.poisson(rate * (lam_b - lam_a))
    cust = np.repeat(np.arange(people.n, dtype=np.int32), count)
    v = lam_a[cust] + rng.random(len(cust)) * (lam_b - lam_a)[cust]
    t = np.empty(len(cust))
    prof = profile[cust]
    for p in profiles:
        m = prof == p
        t[m] = clock.invert(p, v[m])
    # Whole seconds, and never outside the customer's life because of rounding.
    t = np.clip(np.floor(t).astype(np.int64), people.signup[cust], people.leave[cust] - 1)
    return cust, t


def _fade(rng: np.random.Generator, people: _People, cust: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Keep-mask thinning a churner's activity over the weeks before they leave."""
    left = (people.leave[cust] - t) / _FADE_S
    keep_p = np.where(people.churned[cust], np.clip(0.15 + 0.85 * left, 0.0, 1.0), 1.0)
    return rng.random(len(cust)) < keep_p


def generate_business(
    customers: int = 5000, *, seed: int = 7, end: datetime.date | None = None, years: float = 2.0
) -> Batch:
    """A synthetic shop's customers, events, order lines and hidden truth.

    ``customers`` customers sign up during the ``years`` before the end of ``end``
    (default: today, UTC) and produce about ten events each. Equal arguments give
    equal tables.

    >>> batch = generate_business(1000, end=datetime.date(2026, 6, 30))
    >>> batch.customers.num_rows, batch.truth.num_rows
    (1000, 1000)
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if not years > 0:
        raise ValueError("years must be positive")
    if end is None:
        end = datetime.datetime.now(datetime.UTC).date()
    rng = np.random.default_rng(seed)
    end_s = (end.toordinal() - datetime.date(1970, 1, 1).toordinal() + 1) * DAY_S
    span_s = round(years * 365.25 * DAY_S)
    clock = _clock(end_s - span_s, span_s)
    catalogue = _catalogue(rng)
    people = _people(rng, customers, clock)
    ids = _ids("C", np.arange(1, customers + 1), max(7, len(str(customers))))
    customer_table = _customer_table(rng, people, clock, ids)

    vocab: list[str] = []  # properties JSON, indexed by _Events.prop
    visits, lines, n_orders, refunds = _sessions(rng, people, clock, catalogue, vocab)
    events = _concat(
        [
            visits,
            refunds,
            _email_opens(rng, people, clock, vocab),
            _support_tickets(rng, people, clock, vocab),
        ]
    )
    del visits, refunds  # only the combined copy is needed from here on
    event_table, order_no = _event_table(events, n_orders, clock, ids, vocab)
    truth = pa.table(
        {
            "external_id": ids,
            "persona": _take(_strings(PERSONAS), people.persona),
            "churned": pa.array(people.churned),
            "churned_at": pa.array(
                _to_timestamps(clock.start_s, people.leave),
                pa.timestamp("us"),
                mask=~people.churned,
            ),
        }
    )
    return Batch(
        customers=customer_table,
        events=event_table,
        items=_item_table(lines, order_no, catalogue),
        truth=truth,
    )


def _sessions(
    rng: np.random.Generator,
    people: _People,
    clock: _Clock,
    catalogue: _Catalogue,
    vocab: list[str],
) -> tuple[_Events, _Lines, int, _Events]:
    """Visits with their page views, carts and orders; the order lines; the refunds."""
    persona = people.persona
    cust_x, t_x = _poisson_times(
        rng, clock, people, _PERSONA_PROFILE[persona], _SESSIONS_PER_DAY[persona] * people.activity
    )
    keep = _fade(rng, people, cust_x, t_x)
    # The first session is the signup itself.
    s_cust = np.concatenate([np.arange(people.n, dtype=np.int32), cust_x[keep]])
    s_t0 = np.concatenate([people.signup, t_x[keep]])
    del cust_x, t_x, keep
    s_persona = persona[s_cust]
    n_s = len(s_cust)
    first = np.arange(n_s) < people.n
    converts = rng.random(n_s) < np.where(
        first, _FIRST_CONVERSION[s_persona], _CONVERSION[s_persona]
    )
    n_pv = 1 + rng.poisson(_PAGE_VIEWS[s_persona])
    abandoned = ~converts & (rng.random(n_s) < _ABANDON[s_persona])
    n_atc = np.where(
        converts,
        1 + rng.poisson(_EXTRA_LINES[s_persona]),
        np.where(abandoned, 1 + rng.poisson(0.3, n_s), 0),
    )
    size = n_pv + n_atc + converts
    del s_persona, first, abandoned

    # Expand sessions into events: page views, then carts, then the order.
    sess = np.repeat(np.arange(n_s, dtype=np.int32), size)
    pos = _rank_within(sess, size)
    kind = np.full(len(sess), PAGE_VIEW, dtype=np.int8)
    kind[pos >= n_pv[sess]] = ADD_TO_CART
    kind[pos >= (n_pv + n_atc)[sess]] = ORDER
    del pos, n_pv, n_atc
    # Seconds to a minute or two between clicks, a little longer to check out.
    gap = 1.0 + rng.exponential(40.0, len(sess))
    is_order = kind == ORDER
    gap[is_order] = 20.0 + rng.exponential(120.0, int(is_order.sum()))
    t = np.cumsum(gap.astype(np.int64))
    del gap, is_order
    t -= np.repeat(t[_group_starts(size)] - s_t0, size)  # the session starts at s_t0
    kept = t < people.leave[s_cust[sess]]  # sessions cut short by churn or the period's end
    sess, kind, t = sess[kept], kind[kept], t[kept]
    del kept
    cust = s_cust[sess]
    n = len(t)
    prop = np.zeros(n, dtype=np.int32)
    n_prod = len(catalogue.slugs)
    n_cat = len(catalogue.categories)

    # Page views: product pages follow the customer's taste; also collections and others.
    pv = np.flatnonzero(kind == PAGE_VIEW)
    product = _draw_by(rng, catalogue.taste, _TASTE[persona[cust[pv]]])
    page_kind = _draw(rng, np.array([0.62, 0.18, 0.20]), len(pv))
    other = np.floor(rng.random(len(pv)) * len(_PAGES)).astype(np.int64)
    page = np.where(
        page_kind == 0,
        product,
        np.where(page_kind == 1, n_prod + catalogue.category[product], n_prod + n_cat + other),
    )
    prop[pv] = len(vocab) + page
    vocab.extend(json.dumps({"path": f"/products/{s}"}) for s in catalogue.slugs)
    vocab.extend(json.dumps({"path": f"/collections/{_slug(c)}"}) for c in catalogue.categories)
    vocab.extend(json.dumps({"path": p}) for p in _PAGES)
    del pv, product, page_kind, other, page

    # Carts: consumers mostly add one; businesses add packs, larger for larger companies.
    atc = np.flatnonzero(kind == ADD_TO_CART)
    a_persona = persona[cust[atc]]
    a_product = _draw_by(rng, catalogue.taste, _TASTE[a_persona])
    a_qty = np.where(rng.random(len(atc)) < 0.1, 2 + rng.poisson(0.4, len(atc)), 1)
    biz = np.flatnonzero(a_persona == B2B)
    employees = np.log(people.company_size[cust[atc[biz]]])
    packs = np.exp(0.1 + 0.3 * employees + rng.normal(0.0, 0.6, len(biz)))
    a_qty[biz] = _PACKS[np.minimum(np.searchsorted(_PACKS, packs), len(_PACKS) - 1)]
    stride = int(_PACKS[-1]) + 8  # larger than any cart quantity
    combos, code = np.unique(a_product * stride + a_qty, return_inverse=True)
    prop[atc] = len(vocab) + code
    ids = catalogue.ids.to_pylist()
    vocab.extend(
        json.dumps({"product_id": ids[c // stride], "quantity": int(c % stride)})
        for c in combos.tolist()
    )
    del a_persona, biz, employees, packs, combos, code

    # Orders: a converting session's carts are its lines; a product added twice is one
    # line with both quantities, in the order products were first added.
    orders = np.flatnonzero(kind == ORDER)
    n_orders = len(orders)
    order_of_session = np.full(n_s, -1, dtype=np.int64)
    order_of_session[sess[orders]] = np.arange(n_orders)
    line_order = order_of_session[sess[atc]]
    in_order = line_order >= 0
    key = line_order[in_order] * n_prod + a_product[in_order]
    uniq, first_idx, inverse = np.unique(key, return_index=True, return_inverse=True)
    merged_qty = np.bincount(inverse, weights=a_qty[in_order]).astype(np.int64)
    by_first = np.argsort(first_idx, kind="stable")
    l_order = (uniq // n_prod)[by_first]
    l_product = (uniq % n_prod)[by_first]
    l_qty = merged_qty[by_first]
    l_t = t[atc[in_order]][first_idx][by_first]
    l_persona = persona[cust[orders]][l_order]
    del line_order, in_order, key, uniq, first_idx, inverse, merged_qty, by_first

    # Prices: list price less storewide sale, bargain hunters' coupons, volume discount.
    discount = (
        np.where(clock.is_sale(l_t), 0.20, 0.0)
        + np.where((l_persona == BARGAIN) & (rng.random(len(l_order)) < 0.5), 0.10, 0.0)
        + np.select([l_qty >= 250, l_qty >= 50, l_qty >= 10], [0.15, 0.10, 0.05], 0.0)
    )
    unit_cents = np.round(catalogue.price_cents[l_product] * (1.0 - discount)).astype(np.int64)
    line_cents = unit_cents * l_qty
    order_cents = np.bincount(l_order, weights=line_cents, minlength=n_orders).astype(np.int64)
    lines = _Lines(l_order, l_product, l_qty, unit_cents)

    o_cust = cust[orders]
    o_biz = (persona[o_cust] == B2B).astype(np.int64)
    n_items = np.bincount(l_order, minlength=n_orders)
    channel = _draw_by(rng, _CHANNEL_P, o_biz)
    max_items = int(n_items.max(initial=1))
    prop[orders] = len(vocab) + (n_items - 1) * len(_CHANNELS) + channel
    vocab.extend(
        json.dumps({"items": i, "channel": c}) for i in range(1, max_items + 1) for c in _CHANNELS
    )
    cents = np.zeros(n, dtype=np.int64)
    cents[orders] = order_cents
    ref = np.full(n, -1, dtype=np.int32)
    ref[orders] = np.arange(n_orders)
    visits = _Events(cust, kind, t, prop, cents, ref)
    refunds = _refunds(rng, people, o_cust, t[orders], order_cents, line_cents, n_items, vocab)
    return visits, lines, n_orders, refunds


def _refunds(
    rng: np.random.Generator,
    people: _People,
    o_cust: np.ndarray,
    o_t: np.ndarray,
    order_cents: np.ndarray,
    line_cents: np.ndarray,
    n_items: np.ndarray,
    vocab: list[str],
) -> _Events:
    """Days after the order, the whole order or one line, while still a customer."""
    n_orders = len(o_cust)
    refunded = rng.random(n_orders) < _REFUND_RATE[people.persona[o_cust]]
    r_t = o_t + HOUR_S + np.floor(rng.exponential(4.0 * DAY_S, n_orders)).astype(np.int64)
    refunded &= r_t < people.leave[o_cust]
    r_order = np.flatnonzero(refunded)
    n = len(r_order)
    one_line = _group_starts(n_items)[r_order] + np.floor(rng.random(n) * n_items[r_order]).astype(
        np.int64
    )
    whole = rng.random(n) < 0.6
    r_cents = np.where(whole, order_cents[r_order], line_cents[one_line])
    partial = r_cents < order_cents[r_order]
    reason = _draw(rng, _REFUND_REASON_P, n)
    prop = len(vocab) + reason * 2 + partial
    vocab.extend(
        json.dumps({"reason": r, "partial": p}) for r in _REFUND_REASONS for p in (False, True)
    )
    return _Events(
        o_cust[r_order], np.full(n, REFUND, dtype=np.int8), r_t[r_order], prop, -r_cents, r_order
    )


def _email_opens(
    rng: np.random.Generator, people: _People, clock: _Clock, vocab: list[str]
) -> _Events:
    """Campaign e-mails opened by subscribed customers."""
    subscribed = rng.random(people.n) < 0.75
    engagement = np.exp(0.6 * rng.standard_normal(people.n) - 0.18)
    rate = _EMAIL_PER_DAY[people.persona] * engagement * subscribed
    cust, t = _poisson_times(rng, clock, people, np.full(people.n, EMAIL), rate)
    keep = _fade(rng, people, cust, t)
    cust, t = cust[keep], t[keep]
    # A campaign kind per mail; on sale days most opened mails announce the sale.
    first_month = _month_of(clock.start_s)
    month = ((clock.start_s + t) // DAY_S).astype("datetime64[D]").astype("datetime64[M]").astype(
        np.int64
    ) - first_month
    kind = np.where(
        clock.is_sale(t) & (rng.random(len(t)) < 0.7),
        3,
        _draw(rng, np.array([0.55, 0.25, 0.2]), len(t)),
    )
    prop = len(vocab) + month * len(_CAMPAIGNS) + kind
    for m in range(_month_of(clock.start_s + clock.span_s) - first_month + 1):
        label = str(np.datetime64(first_month + m, "M"))  # "2025-11"
        year, mon = label.split("-")
        sale = {
            "11": f"black-friday-{year}",
            "12": f"holiday-sale-{year}",
            "07": f"summer-sale-{year}",
        }.get(mon, f"flash-sale-{label}")
        vocab.extend(
            json.dumps({"campaign": c}) for c in (*(f"{k}-{label}" for k in _CAMPAIGNS[:3]), sale)
        )
    n = len(t)
    return _Events(cust, np.full(n, EMAIL_OPEN, dtype=np.int8), t, prop)


def _month_of(unix_s: int) -> int:
    """Months since 1970-01 of a Unix time."""
    return int(np.datetime64(unix_s // DAY_S, "D").astype("datetime64[M]").astype(np.int64))


def _slug(text: str) -> str:
    return text.lower().replace(" & ", "-and-").replace(" ", "-")


def _support_tickets(
    rng: np.random.Generator, people: _People, clock: _Clock, vocab: list[str]
) -> _Events:
    """A low base rate of tickets, plus complaints from many churners before they leave."""
    persona = people.persona
    cust_a, t_a = _poisson_times(
        rng, clock, people, np.full(people.n, OFFICE), _TICKETS_PER_DAY[persona]
    )
    unhappy = people.churned & (rng.random(people.n) < _UNHAPPY[persona])
    count = np.where(unhappy, 1 + rng.poisson(0.2, people.n), 0)
    cust_b = np.repeat(np.arange(people.n, dtype=np.int32), count)
    # Complaints come in office hours too: invert the office clock over the last weeks.
    since = np.maximum(people.signup, people.leave - _COMPLAINT_S)[cust_b]
    lam_since = clock.at(OFFICE, since)
    lam_leave = clock.at(OFFICE, people.leave[cust_b])
    v = lam_since + rng.random(len(cust_b)) * (lam_leave - lam_since)
    t_b = np.clip(
        np.floor(clock.invert(OFFICE, v)).astype(np.int64), since, people.leave[cust_b] - 1
    )
    cust = np.concatenate([cust_a, cust_b])
    t = np.concatenate([t_a, t_b])
    upset = np.concatenate([np.zeros(len(cust_a), np.int64), np.ones(len(cust_b), np.int64)])
    topic = _draw_by(rng, _TOPIC_P, upset)
    priority = _draw_by(rng, _PRIORITY_P, upset)
    prop = len(vocab) + topic * len(_PRIORITIES) + priority
    vocab.extend(json.dumps({"topic": tp, "priority": pr}) for tp in _TOPICS for pr in _PRIORITIES)
    n = len(t)
    return _Events(cust, np.full(n, SUPPORT_TICKET, dtype=np.int8), t, prop)


def _event_table(
    ev: _Events, n_orders: int, clock: _Clock, ids: pa.Array, vocab: list[str]
) -> tuple[pa.Table, np.ndarray]:
    """Events in time order, and the number (1, 2, …) of each order in time order.

    Consumes ``ev``: its arrays are dropped as soon as their sorted copy exists.
    """
    by_time = np.argsort(ev.t, kind="stable")
    t, ev.t = ev.t[by_time], None
    kind, ev.kind = ev.kind[by_time], None
    ref, ev.ref = ev.ref[by_time], None
    is_order = kind == ORDER
    is_refund = kind == REFUND
    money = is_order | is_refund
    n = len(t)
    order_no = np.zeros(n_orders, dtype=np.int64)
    order_no[ref[is_order]] = np.arange(1, n_orders + 1)

    # An order's id, or "R" and the refunded order's id.
    width = max(8, len(str(n_orders)))
    order_ids = _ids("O", np.arange(1, n_orders + 1), width)
    all_ids = pa.concat_arrays([order_ids, pc.binary_join_element_wise("R", order_ids, "")])
    id_index = np.zeros(n, dtype=np.int64)
    id_index[money] = order_no[ref[money]] - 1 + is_refund[money] * n_orders
    order_id = _take(all_ids, id_index, money)
    del ref, id_index, is_order, is_refund
    type_names = _take(_strings(EVENT_TYPES), kind)
    del kind
    serial = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
    event_key = pc.binary_join_element_wise(type_names, pc.coalesce(order_id, serial), ":")
    del serial
    timestamp = pa.array(_to_timestamps(clock.start_s, t), pa.timestamp("us"))
    del t
    cents, ev.cents = ev.cents[by_time], None
    revenue = pa.array(cents / 100.0, pa.float64(), mask=~money)
    del cents
    external_id = _take(ids, ev.cust[by_time])
    ev.cust = None
    properties = _take(_strings(vocab), ev.prop[by_time])
    ev.prop = None
    table = pa.table(
        {
            "external_id": external_id,
            "event_type": type_names,
            "timestamp": timestamp,
            "revenue": revenue,
            "currency": _take(_strings(["USD"]), np.zeros(n, np.int32), money),
            "order_id": order_id,
            "properties": properties,
            "event_key": event_key,
        }
    )
    return table, order_no


def _item_table(lines: _Lines, order_no: np.ndarray, catalogue: _Catalogue) -> pa.Table:
    """Order lines by order number; the lines of an order keep their order."""
    no = order_no[lines.order]
    by_order = np.argsort(no, kind="stable")
    no, product = no[by_order], lines.product[by_order]
    counts = np.bincount(no, minlength=len(order_no) + 1)[1:]
    width = max(8, len(str(len(order_no))))
    return pa.table(
        {
            "event_key": pc.binary_join_element_wise("order:", _ids("O", no, width), ""),
            "line_no": pa.array(_rank_within(no, counts).astype(np.int32), pa.int32()),
            "product_id": _take(catalogue.ids, product),
            "product_name": _take(catalogue.names, product),
            "quantity": pa.array(lines.quantity[by_order].astype(np.float64), pa.float64()),
            "unit_price": pa.array(lines.unit_cents[by_order] / 100.0, pa.float64()),
        }
    )
