"""Segment refresh and preview on DuckDB, PostgreSQL and Spark (``make bench``).

Measures, on one generated business (default 1,000,000 customers, ~10M events):

1. A full refresh of RFM (11 segments) + 20 representative rule segments, done as
   ``strata segments refresh --as-of DAY`` does it (``Segments.refresh``: compile,
   evaluate, write the membership changes), on every backend asked for.
2. On DuckDB, side by side in the same run and on the same file: the same job written
   by hand in DuckDB SQL (one query per segment, an NTILE query for RFM, and the same
   membership diff: insert joiners, close leavers, count members) against a
   ``memberships`` table of the same shape. Each hand-written member set is checked
   against Strata's after every refresh; the bench stops if one differs.
3. On DuckDB, the latency of ``Segments.preview`` for a 5-condition rule (and of the
   hand-written query returning the same count and sample).

"Cold" is the first refresh (no memberships yet: everybody joins); "warm" is the next
day's refresh of an already-refreshed state (a few joiners and leavers). Each repeat
empties the memberships first (outside the clock), then runs cold and warm, with
Strata and the hand-written SQL taking turns at going first. Aims (issue): Strata
≤ 1.3× the hand-written time on DuckDB; preview ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

import strata
from strata.config import Settings
from strata.context import Strata
from strata.ingest.generate import generate_business
from strata.segments.engine import Segments, ensure_rfm_segments
from strata.segments.nodes import SegmentSpec, parse_rule
from strata.segments.reference import ReferenceTime

ROOT = Path(__file__).resolve().parent.parent
END = dt.date(2026, 6, 30)  # the generated business's last day
FIRST_DAY = dt.date(2026, 6, 16)  # reference day of the first cold refresh
REFRESH_AIM = 1.3
PREVIEW_AIM_MS = 300
EUROPE = ["GB", "DE", "FR", "NL", "ES", "IT", "SE", "IE", "PL", "BE", "CH", "DK"]
HOLDOUT_SALT = "champions-2026"


@dataclass(frozen=True)
class Case:
    """One segment: its Strata rule and the same segment written by hand in DuckDB SQL.

    The SQL returns the members' ``customer_id``. Placeholders: ``{ws}`` (the workspace
    schema), ``{now}`` (the reference instant: events before it count), ``{today}``
    (the reference day), ``{hw}`` (the hand-written memberships table),
    ``{champions}`` (the id of the Champions segment) and ``{s1}``…``{s4}`` (the
    constants of the holdout's random bucket).
    """

    name: str
    rule: dict[str, Any]
    sql: str


def _window(days: int) -> dict[str, Any]:
    return {"last_days": days}


CASES = [
    Case(
        "us-ca-paid-plans",
        {
            "type": "and",
            "conditions": [
                {"type": "attribute", "attribute": "country", "op": "in", "value": ["US", "CA"]},
                {
                    "type": "attribute",
                    "attribute": "plan",
                    "op": "in",
                    "value": ["pro", "business"],
                },
            ],
        },
        """SELECT customer_id FROM {ws}.customers
           WHERE country IN ('US', 'CA') AND plan IN ('pro', 'business')""",
    ),
    Case(
        "recent-signups",
        {"type": "attribute", "attribute": "signup_date", "op": "within_last_days", "value": 30},
        """SELECT customer_id FROM {ws}.customers
           WHERE signup_date BETWEEN {today} - 29 AND {today}""",
    ),
    Case(
        "birthday-this-week",
        {
            "type": "attribute",
            "attribute": "birth_date",
            "op": "within_next_days",
            "value": 7,
            "yearly": True,
        },
        # Month and day in the next 7 days; 29 February counts on the 28th of other years.
        """WITH days AS (
             SELECT d::DATE AS d, month(d) * 100 + day(d) AS md
             FROM (SELECT unnest(generate_series({today}, {today} + 6, INTERVAL 1 DAY)) AS d)
           )
           SELECT customer_id FROM {ws}.customers
           WHERE month(birth_date) * 100 + day(birth_date) IN (SELECT md FROM days)
              OR (month(birth_date) * 100 + day(birth_date) = 229
                  AND EXISTS (SELECT 1 FROM days WHERE md = 228 AND day(last_day(d)) = 28))""",
    ),
    Case(
        "b2b-sweet-spot",
        {
            "type": "and",
            "conditions": [
                {
                    "type": "attribute",
                    "attribute": "industry",
                    "op": "in",
                    "value": ["Software", "Professional Services"],
                },
                {
                    "type": "attribute",
                    "attribute": "company_size",
                    "op": "between",
                    "value": [50, 500],
                },
                {"type": "performed", "event": "order", "window": _window(365)},
            ],
        },
        """SELECT customer_id FROM {ws}.customers
           WHERE industry IN ('Software', 'Professional Services')
             AND company_size BETWEEN 50 AND 500
             AND customer_id IN (
               SELECT customer_id FROM {ws}.events
               WHERE event_type = 'order'
                 AND timestamp >= {now} - INTERVAL 365 DAY AND timestamp < {now})""",
    ),
    Case(
        "lapsed-visitors",
        {
            "type": "and",
            "conditions": [
                {"type": "performed", "event": "order"},
                {"type": "not_performed", "event": "*", "window": _window(90)},
            ],
        },
        """SELECT customer_id FROM {ws}.events WHERE timestamp < {now}
           GROUP BY customer_id
           HAVING count(*) FILTER (WHERE event_type = 'order') > 0
              AND count(*) FILTER (WHERE timestamp >= {now} - INTERVAL 90 DAY) = 0""",
    ),
    Case(
        "cart-abandoners-7d",
        {
            "type": "and",
            "conditions": [
                {"type": "performed", "event": "add_to_cart", "window": _window(7)},
                {"type": "not_performed", "event": "order", "window": _window(7)},
            ],
        },
        """SELECT customer_id FROM {ws}.events
           WHERE event_type IN ('add_to_cart', 'order')
             AND timestamp >= {now} - INTERVAL 7 DAY AND timestamp < {now}
           GROUP BY customer_id
           HAVING count(*) FILTER (WHERE event_type = 'add_to_cart') > 0
              AND count(*) FILTER (WHERE event_type = 'order') = 0""",
    ),
    Case(
        "frequent-buyers-90d",
        {
            "type": "performed",
            "event": "order",
            "window": _window(90),
            "times": {"op": "gte", "value": 3},
        },
        """SELECT customer_id FROM {ws}.events
           WHERE event_type = 'order'
             AND timestamp >= {now} - INTERVAL 90 DAY AND timestamp < {now}
           GROUP BY customer_id HAVING count(*) >= 3""",
    ),
    Case(
        "big-spenders-at-risk",
        {
            "type": "and",
            "conditions": [
                {
                    "type": "aggregate",
                    "event": "order",
                    "fn": "sum",
                    "op": "gt",
                    "value": 500,
                    "window": _window(180),
                },
                {"type": "not_performed", "event": "order", "window": _window(45)},
            ],
        },
        """SELECT customer_id FROM {ws}.events
           WHERE event_type = 'order'
             AND timestamp >= {now} - INTERVAL 180 DAY AND timestamp < {now}
           GROUP BY customer_id
           HAVING coalesce(sum(revenue), 0) > 500
              AND count(*) FILTER (WHERE timestamp >= {now} - INTERVAL 45 DAY) = 0""",
    ),
    Case(
        "high-aov-last-quarter-but-one",
        {
            "type": "aggregate",
            "event": "order",
            "fn": "avg",
            "op": "gte",
            "value": 150,
            "window": {"days_ago": [30, 120]},
        },
        # Between 30 and 120 days ago: from the start of day -120 to the start of day -29.
        """SELECT customer_id FROM {ws}.events
           WHERE event_type = 'order'
             AND timestamp >= {now} - INTERVAL 121 DAY AND timestamp < {now} - INTERVAL 30 DAY
           GROUP BY customer_id HAVING avg(revenue) >= 150""",
    ),
    Case(
        "holiday-2025-buyers",
        {"type": "performed", "event": "order", "window": {"dates": ["2025-11-20", "2025-12-31"]}},
        """SELECT DISTINCT customer_id FROM {ws}.events
           WHERE event_type = 'order' AND timestamp < {now}
             AND timestamp >= TIMESTAMP '2025-11-20' AND timestamp < TIMESTAMP '2026-01-01'""",
    ),
    Case(
        "app-buyers-180d",
        {
            "type": "performed",
            "event": "order",
            "window": _window(180),
            "where": [{"property": "channel", "op": "eq", "value": "app"}],
        },
        """SELECT DISTINCT customer_id FROM {ws}.events
           WHERE event_type = 'order' AND (properties->>'$.channel') = 'app'
             AND timestamp >= {now} - INTERVAL 180 DAY AND timestamp < {now}""",
    ),
    Case(
        "store-only-buyers",
        {
            "type": "and",
            "conditions": [
                {
                    "type": "performed",
                    "event": "order",
                    "where": [{"property": "channel", "op": "eq", "value": "store"}],
                },
                {
                    "type": "not_performed",
                    "event": "order",
                    "where": [{"property": "channel", "op": "in", "value": ["web", "app"]}],
                },
            ],
        },
        """SELECT customer_id FROM {ws}.events
           WHERE event_type = 'order' AND timestamp < {now}
           GROUP BY customer_id
           HAVING count(*) FILTER (WHERE (properties->>'$.channel') = 'store') > 0
              AND count(*) FILTER (WHERE (properties->>'$.channel') IN ('web', 'app')) = 0""",
    ),
    Case(
        "newsletter-readers-not-buying",
        {
            "type": "and",
            "conditions": [
                {
                    "type": "performed",
                    "event": "email_open",
                    "window": _window(60),
                    "where": [{"property": "campaign", "op": "starts_with", "value": "newsletter"}],
                    "times": {"op": "gte", "value": 3},
                },
                {"type": "not_performed", "event": "order", "window": _window(60)},
            ],
        },
        """SELECT customer_id FROM {ws}.events
           WHERE event_type IN ('email_open', 'order')
             AND timestamp >= {now} - INTERVAL 60 DAY AND timestamp < {now}
           GROUP BY customer_id
           HAVING count(*) FILTER (WHERE event_type = 'email_open'
                    AND starts_with(lower(properties->>'$.campaign'), 'newsletter')) >= 3
              AND count(*) FILTER (WHERE event_type = 'order') = 0""",
    ),
    Case(
        "loyal-5-orders",
        {"type": "trait", "trait": "total_orders", "op": "gte", "value": 5},
        """SELECT customer_id FROM {ws}.events
           WHERE event_type = 'order' AND timestamp < {now}
           GROUP BY customer_id HAVING count(*) >= 5""",
    ),
    Case(
        "high-aov-repeaters",
        {
            "type": "and",
            "conditions": [
                {"type": "trait", "trait": "average_order_value", "op": "gt", "value": 200},
                {"type": "trait", "trait": "total_orders", "op": "gte", "value": 2},
            ],
        },
        """SELECT customer_id FROM {ws}.events
           WHERE event_type = 'order' AND timestamp < {now}
           GROUP BY customer_id
           HAVING count(*) >= 2 AND sum(coalesce(revenue, 0)) / count(*) > 200""",
    ),
    Case(
        "lapsing-60-180d",
        {"type": "trait", "trait": "days_since_last_order", "op": "between", "value": [60, 180]},
        """SELECT customer_id FROM {ws}.events
           WHERE event_type = 'order' AND timestamp < {now}
           GROUP BY customer_id
           HAVING {today} - max(timestamp)::DATE BETWEEN 60 AND 180""",
    ),
    Case(
        "product-explorers",
        {"type": "trait", "trait": "distinct_products", "op": "gte", "value": 5},
        """SELECT customer_id FROM {ws}.order_items
           WHERE event_id IN (
             SELECT event_id FROM {ws}.events WHERE event_type = 'order' AND timestamp < {now})
           GROUP BY customer_id
           HAVING count(DISTINCT coalesce(product_id, product_name)) >= 5""",
    ),
    Case(
        "web-first-buyers",
        {
            "type": "and",
            "conditions": [
                {
                    "type": "trait",
                    "trait": "most_frequent",
                    "property": "channel",
                    "event": "order",
                    "op": "eq",
                    "value": "web",
                },
                {"type": "trait", "trait": "total_orders", "op": "gte", "value": 3},
            ],
        },
        # The most frequent channel; ties go to the first channel in alphabetical order.
        """WITH channels AS (
             SELECT customer_id, (properties->>'$.channel') AS channel, count(*) AS n
             FROM {ws}.events
             WHERE event_type = 'order' AND timestamp < {now}
               AND (properties->>'$.channel') IS NOT NULL
             GROUP BY customer_id, channel
             QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY n DESC, channel) = 1
           )
           SELECT customer_id FROM channels WHERE channel = 'web'
             AND customer_id IN (
               SELECT customer_id FROM {ws}.events
               WHERE event_type = 'order' AND timestamp < {now}
               GROUP BY customer_id HAVING count(*) >= 3)""",
    ),
    Case(
        "champions-holdout",
        {
            "type": "and",
            "conditions": [
                {"type": "in_segment", "segment": "Champions"},
                {"type": "random_bucket", "from": 0, "to": 10, "salt": HOLDOUT_SALT},
            ],
        },
        # Champions were refreshed just before, as of the same day: read their memberships.
        # The bucket: Strata's salted hash of the customer id, written out in SQL.
        """SELECT customer_id FROM (
             SELECT customer_id,
                    (customer_id % 2147483647 + {s1}) % 2147483647 AS h1,
                    (h1 * h1 + {s2}) % 2147483647 AS h2,
                    (h2 * 48271 + {s3}) % 2147483647 AS h3,
                    (h3 * h3 + {s4}) % 2147483647 AS h4
             FROM {hw} WHERE segment_id = {champions} AND left_at IS NULL)
           WHERE h4 % 10000 BETWEEN 0 AND 999""",
    ),
    Case(
        "unhappy-europeans",
        {
            "type": "and",
            "conditions": [
                {"type": "attribute", "attribute": "country", "op": "in", "value": EUROPE},
                {
                    "type": "or",
                    "conditions": [
                        {
                            "type": "performed",
                            "event": "support_ticket",
                            "window": _window(90),
                            "where": [
                                {"property": "priority", "op": "in", "value": ["high", "urgent"]}
                            ],
                        },
                        {
                            "type": "aggregate",
                            "event": "refund",
                            "fn": "count",
                            "op": "gte",
                            "value": 2,
                        },
                    ],
                },
                {
                    "type": "not",
                    "condition": {
                        "type": "attribute",
                        "attribute": "plan",
                        "op": "eq",
                        "value": "business",
                    },
                },
            ],
        },
        """SELECT customer_id FROM {ws}.customers
           WHERE country IN ('GB', 'DE', 'FR', 'NL', 'ES', 'IT', 'SE', 'IE', 'PL', 'BE', 'CH',
                             'DK')
             AND plan IS DISTINCT FROM 'business'
             AND customer_id IN (
               SELECT customer_id FROM {ws}.events
               WHERE event_type IN ('support_ticket', 'refund') AND timestamp < {now}
               GROUP BY customer_id
               HAVING count(*) FILTER (WHERE event_type = 'support_ticket'
                        AND timestamp >= {now} - INTERVAL 90 DAY
                        AND (properties->>'$.priority') IN ('high', 'urgent')) > 0
                   OR count(*) FILTER (WHERE event_type = 'refund') >= 2)""",
    ),
]

# RFM by hand: NTILE over customers with orders, worst to best, ties by customer id
# (revenue at 6 decimals, so float noise in the sums breaks no tie); the segment from
# recency against FM = (F + M + 1) // 2, as in the default grid.
RFM_SQL = """
WITH orders AS (
  SELECT customer_id,
         count(*) FILTER (WHERE event_type = 'order') AS total_orders,
         sum(coalesce(revenue, 0)) AS total_revenue,
         max(timestamp) FILTER (WHERE event_type = 'order') AS last_order
  FROM {ws}.events
  WHERE event_type IN ('order', 'refund') AND timestamp < {now}
  GROUP BY customer_id
  HAVING count(*) FILTER (WHERE event_type = 'order') > 0
), scored AS (
  SELECT customer_id,
         ntile(5) OVER (ORDER BY {today} - last_order::DATE DESC, customer_id) AS r,
         (ntile(5) OVER (ORDER BY total_orders, customer_id)
          + ntile(5) OVER (ORDER BY round(total_revenue, 6), customer_id) + 1) // 2 AS fm
  FROM orders
)
SELECT customer_id, CASE
  WHEN r = 5 AND fm >= 4 THEN 'Champions'
  WHEN r IN (3, 4) AND fm >= 4 THEN 'Loyal Customers'
  WHEN r >= 4 AND fm IN (2, 3) THEN 'Potential Loyalists'
  WHEN r = 5 AND fm = 1 THEN 'New Customers'
  WHEN r = 4 AND fm = 1 THEN 'Promising'
  WHEN r = 3 AND fm = 3 THEN 'Need Attention'
  WHEN r = 3 THEN 'About to Sleep'
  WHEN fm IN (3, 4) THEN 'At Risk'
  WHEN fm = 5 THEN 'Can''t Lose Them'
  WHEN r = 2 THEN 'Hibernating'
  ELSE 'Lost' END AS segment
FROM scored
"""

PREVIEW_RULE = {
    "type": "and",
    "conditions": [
        {"type": "attribute", "attribute": "country", "op": "in", "value": ["US", "GB", "CA"]},
        {"type": "attribute", "attribute": "plan", "op": "neq", "value": "free"},
        {"type": "performed", "event": "order", "window": _window(90)},
        {
            "type": "aggregate",
            "event": "order",
            "fn": "sum",
            "op": "gt",
            "value": 300,
            "window": _window(365),
        },
        {"type": "not_performed", "event": "support_ticket", "window": _window(30)},
    ],
}
PREVIEW_SQL = """
WITH members AS (
  SELECT customer_id FROM {ws}.customers
  WHERE country IN ('US', 'GB', 'CA') AND plan IS DISTINCT FROM 'free'
    AND customer_id IN (
      SELECT customer_id FROM {ws}.events
      WHERE event_type = 'order'
        AND timestamp >= {now} - INTERVAL 365 DAY AND timestamp < {now}
      GROUP BY customer_id
      HAVING count(*) FILTER (WHERE timestamp >= {now} - INTERVAL 90 DAY) > 0
         AND sum(revenue) > 300)
    AND customer_id NOT IN (
      SELECT customer_id FROM {ws}.events
      WHERE event_type = 'support_ticket'
        AND timestamp >= {now} - INTERVAL 30 DAY AND timestamp < {now})
)
SELECT count(*) OVER () AS n, customer_id, external_id, email, name
FROM members JOIN {ws}.customers USING (customer_id)
ORDER BY customer_id LIMIT 10
"""

# The hand-written membership diff, statement by statement (what apply_members does).
HW_TABLE = "handwritten.memberships"
HW_CREATE = """CREATE SCHEMA IF NOT EXISTS handwritten;
CREATE TABLE IF NOT EXISTS handwritten.memberships (
  segment_id BIGINT, customer_id BIGINT, joined_at TIMESTAMP, left_at TIMESTAMP,
  confidence DOUBLE)"""
HW_STAGE = "CREATE OR REPLACE TEMP TABLE hw_stage AS {members}"
HW_JOIN = """INSERT INTO handwritten.memberships
SELECT {segment}, customer_id, {now}, NULL, 1.0 FROM hw_stage s
WHERE NOT EXISTS (SELECT 1 FROM handwritten.memberships m
                  WHERE m.segment_id = {segment} AND m.left_at IS NULL
                    AND m.customer_id = s.customer_id)"""
HW_LEAVE = """UPDATE handwritten.memberships m SET left_at = {now}
WHERE segment_id = {segment} AND left_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM hw_stage s WHERE s.customer_id = m.customer_id)"""
HW_COUNT = """SELECT count(*) FROM handwritten.memberships
WHERE segment_id = {segment} AND left_at IS NULL"""
DIFF_SQL = """
SELECT customer_id FROM (
  (SELECT customer_id FROM {ws}.memberships WHERE segment_id = {segment} AND left_at IS NULL
   EXCEPT SELECT customer_id FROM handwritten.memberships
   WHERE segment_id = {segment} AND left_at IS NULL)
  UNION ALL
  (SELECT customer_id FROM handwritten.memberships
   WHERE segment_id = {segment} AND left_at IS NULL
   EXCEPT SELECT customer_id FROM {ws}.memberships
   WHERE segment_id = {segment} AND left_at IS NULL))"""


def _salts(text: str) -> dict[str, int]:
    """The four constants of a random bucket's hash, as Strata draws them from the salt."""
    digest = hashlib.sha256(text.encode()).digest()
    return {
        f"s{i + 1}": int.from_bytes(digest[4 * i : 4 * i + 4], "big") % 2_147_483_647
        for i in range(4)
    }


class HandWritten:
    """The refresh written by hand in DuckDB SQL, on the warehouse's own connection."""

    def __init__(self, con, ws: str, ids: dict[str, int]):
        self.con, self.ws, self.ids = con, ws, ids
        con.execute(HW_CREATE)

    def params(self, ref: ReferenceTime, **extra: Any) -> dict[str, Any]:
        return {
            "ws": self.ws,
            "now": f"TIMESTAMP '{ref.instant.isoformat(sep=' ')}'",
            "today": f"DATE '{ref.day.isoformat()}'",
            "hw": HW_TABLE,
            "champions": self.ids["Champions"],
            **_salts(HOLDOUT_SALT),
            **extra,
        }

    def apply(self, segment: int, members_sql: str, ref: ReferenceTime) -> dict[str, int]:
        p = self.params(ref, segment=segment, members=members_sql)
        con = self.con
        con.begin()
        try:
            con.execute(HW_STAGE.format(**p))
            joined = con.execute(HW_JOIN.format(**p)).fetchone()[0]
            left = con.execute(HW_LEAVE.format(**p)).fetchone()[0]
            members = con.execute(HW_COUNT.format(**p)).fetchone()[0]
            con.execute("DROP TABLE hw_stage")
        except BaseException:
            con.rollback()
            raise
        con.commit()
        return {"members": members, "joined": joined, "left": left}

    def refresh(self, ref: ReferenceTime, rfm_names: list[str]) -> dict[str, dict[str, Any]]:
        """RFM first (as Strata does), then the 20 segments; per segment: counts, seconds."""
        out: dict[str, dict[str, Any]] = {}
        started = time.perf_counter()
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE hw_rfm AS " + RFM_SQL.format(**self.params(ref))
        )
        for name in rfm_names:
            quoted = name.replace("'", "''")
            members = f"SELECT customer_id FROM hw_rfm WHERE segment = '{quoted}'"  # noqa: S608 - our own constant names
            out[name] = self.apply(self.ids[name], members, ref)
            out[name]["seconds"] = time.perf_counter() - started
            started = time.perf_counter()
        self.con.execute("DROP TABLE hw_rfm")
        for case in CASES:
            out[case.name] = self.apply(
                self.ids[case.name], case.sql.format(**self.params(ref)), ref
            )
            out[case.name]["seconds"] = time.perf_counter() - started
            started = time.perf_counter()
        return out


# -- stores -----------------------------------------------------------------------------
def _postgres_db(base_url: str) -> tuple[str, str]:
    name = f"strata_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return name, f"{base_url.rpartition('/')[0]}/{name}"


def _drop_db(base_url: str, name: str) -> None:
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _store(backend: str, pg_url: str | None) -> Iterator[Strata]:
    """A fresh home (and for PostgreSQL a fresh database) with the warehouse open."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("STRATA_BENCH_TMP")) as tmp:
        home = Path(tmp)
        db = None
        if backend == "duckdb":
            url = f"duckdb://{home / 'w.duckdb'}"
        elif backend == "postgres":
            db, url = _postgres_db(pg_url)
        else:
            url = f"spark://local[2]?location={home / 'spark'}"
        try:
            settings = Settings(
                home=home, database_url=f"sqlite:///{home / 'catalog.db'}", warehouse_url=url
            )
            with Strata(settings) as app:
                _ = (app.warehouse, app.sessions)
                yield app
        finally:
            if db:
                _drop_db(pg_url, db)


def _setup(app: Strata, batch) -> tuple[Segments, dict[str, int], float]:
    """Load the business, save the RFM and the 20 segments (not evaluated); load seconds."""
    ws = app.workspace("bench", create=True)
    started = time.perf_counter()
    app.warehouse.load(ws.id, batch)
    load_s = time.perf_counter() - started
    segs = Segments(app, ws)
    ensure_rfm_segments(segs, segs.rfm_config())
    for case in CASES:
        segs.save(SegmentSpec(name=case.name, rule=parse_rule(case.rule)), evaluate=False)
    ids = {s.name: s.id for s in segs.list()}
    return segs, ids, load_s


def _empty_memberships(app: Strata, segs: Segments, ids: dict[str, int], hand: bool) -> None:
    """Back to no memberships at all, so the next refresh is a first one."""
    for seg_id in ids.values():
        app.warehouse.delete_members(segs.ws.id, seg_id)
    if app.warehouse.dialect == "duckdb":
        con = app.warehouse.ibis.con
        if hand:
            con.execute(f"DELETE FROM {HW_TABLE}")  # noqa: S608 - a constant
        con.execute("CHECKPOINT")


def _strata_refresh(segs: Segments, ref: ReferenceTime) -> tuple[float, dict[str, dict]]:
    started = time.perf_counter()
    results = segs.refresh(as_of=ref)
    seconds = time.perf_counter() - started
    return seconds, {r.segment: r.to_dict() for r in results}


def _check_same(
    app: Strata, hand: HandWritten, ref: ReferenceTime, strata: dict, handwritten: dict
) -> None:
    """Stop the bench if a hand-written member set (or its change) differs from Strata's."""
    con = app.warehouse.ibis.con
    wrong = []
    for name, seg_id in hand.ids.items():
        sql = DIFF_SQL.format(**hand.params(ref, segment=seg_id))
        differ = len(con.execute(sql).fetchall())
        s, h = (
            tuple(x[k] for k in ("members", "joined", "left"))
            for x in (strata[name], handwritten[name])
        )
        if differ or s != h:
            wrong.append(
                f"{name}: members/joined/left {s} by Strata, {h} by hand; {differ} customers differ"
            )
    if wrong:
        raise SystemExit(
            f"hand-written SQL and Strata disagree (as of {ref}):\n  " + "\n  ".join(wrong)
        )


# -- the benches ------------------------------------------------------------------------
def _runs(repeat: int) -> Iterator[tuple[int, ReferenceTime, ReferenceTime]]:
    """Per repeat: the cold day and the next (warm) day; days only move forward."""
    for r in range(repeat):
        cold = FIRST_DAY + dt.timedelta(days=2 * r)
        yield (
            r,
            ReferenceTime.parse(cold.isoformat()),
            ReferenceTime.parse((cold + dt.timedelta(days=1)).isoformat()),
        )


def bench_duckdb(batch, repeat: int, preview_runs: int) -> dict[str, Any]:
    with _store("duckdb", None) as app:
        segs, ids, load_s = _setup(app, batch)
        rfm_names = [s.name for s in segs.list() if s.family == "rfm"]
        hand = HandWritten(app.warehouse.ibis.con, app.warehouse.schema_name(segs.ws.id), ids)
        # One pass of each, untimed, so neither pays for a cold file cache or first imports.
        warm_up = ReferenceTime.parse((FIRST_DAY - dt.timedelta(days=1)).isoformat())
        segs.refresh(as_of=warm_up)
        hand.refresh(warm_up, rfm_names)
        runs: dict[str, list] = {"cold": [], "warm": []}
        for r, cold, warm in _runs(repeat):
            _empty_memberships(app, segs, ids, hand=True)
            for phase, ref in (("cold", cold), ("warm", warm)):
                order = ("strata", "hand") if r % 2 == 0 else ("hand", "strata")
                got: dict[str, Any] = {}
                for who in order:
                    if who == "strata":
                        got["strata_s"], got["strata"] = _strata_refresh(segs, ref)
                    else:
                        started = time.perf_counter()
                        got["hand"] = hand.refresh(ref, rfm_names)
                        got["hand_s"] = time.perf_counter() - started
                _check_same(app, hand, ref, got["strata"], got["hand"])
                got.update(as_of=str(ref), first=order[0])
                runs[phase].append(got)
                print(
                    f"  duckdb {phase} {ref}: strata {got['strata_s']:.2f} s, "
                    f"hand-written {got['hand_s']:.2f} s; same members",
                    flush=True,
                )
        preview = _preview(app, segs, hand, runs["warm"][-1]["as_of"], preview_runs)
        sizes = {n: v["members"] for n, v in runs["warm"][-1]["strata"].items()}
        return {"load_s": load_s, "runs": runs, "preview": preview, "sizes": sizes}


def _preview(app: Strata, segs: Segments, hand: HandWritten, day: str, n: int) -> dict:
    ref = ReferenceTime.parse(day)
    rule = parse_rule(PREVIEW_RULE)
    sql = PREVIEW_SQL.format(**hand.params(ref))
    con = app.warehouse.ibis.con
    strata_ms, hand_ms = [], []
    for i in range(n + 1):  # the first run of each warms up and is not counted
        started = time.perf_counter()
        result = segs.preview(rule, as_of=ref)
        strata_s = time.perf_counter() - started
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        hand_s = time.perf_counter() - started
        if result.count != (rows[0][0] if rows else 0):
            raise SystemExit(f"preview: strata counts {result.count}, hand-written {rows[0][0]}")
        if i:
            strata_ms.append(strata_s * 1000)
            hand_ms.append(hand_s * 1000)
    return {
        "as_of": day,
        "count": result.count,
        "runs": n,
        "strata_ms": strata_ms,
        "hand_ms": hand_ms,
    }


def bench_other(backend: str, batch, repeat: int, pg_url: str | None) -> dict[str, Any]:
    with _store(backend, pg_url) as app:
        segs, ids, load_s = _setup(app, batch)
        print(f"  {backend}: loaded in {load_s:.1f} s", flush=True)
        warm_up = ReferenceTime.parse((FIRST_DAY - dt.timedelta(days=1)).isoformat())
        segs.refresh(as_of=warm_up)
        runs: dict[str, list] = {"cold": [], "warm": []}
        for _r, cold, warm in _runs(repeat):
            _empty_memberships(app, segs, ids, hand=False)
            for phase, ref in (("cold", cold), ("warm", warm)):
                seconds, per = _strata_refresh(segs, ref)
                runs[phase].append({"as_of": str(ref), "strata_s": seconds, "strata": per})
                print(f"  {backend} {phase} {ref}: strata {seconds:.2f} s", flush=True)
        sizes = {n: v["members"] for n, v in runs["warm"][-1]["strata"].items()}
        return {"load_s": load_s, "runs": runs, "sizes": sizes}


# -- reporting --------------------------------------------------------------------------
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _table(results: dict[str, Any], customers: dict[str, int], events: dict[str, int]) -> None:
    print(
        "\n| backend | customers | events | refresh | Strata s (median) | hand-written s | "
        "Strata / hand-written |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for backend, res in results.items():
        for phase in ("cold", "warm"):
            runs = res["runs"][phase]
            s = _median([r["strata_s"] for r in runs])
            hand = [r["hand_s"] for r in runs if "hand_s" in r]
            h = _median(hand) if hand else None
            ratio = f"{s / h:.2f}×" if h else "–"
            print(
                f"| {backend} | {customers[backend]:,} | {events[backend]:,} | {phase} | "
                f"{s:.2f} | {f'{h:.2f}' if h else '–'} | {ratio} |"
            )
    print(f"(aim: Strata ≤ {REFRESH_AIM}× the hand-written time on DuckDB)")
    duck = results.get("duckdb")
    for backend, res in results.items():
        if duck and backend != "duckdb" and customers[backend] == customers["duckdb"]:
            differ = {
                n: res["sizes"].get(n, 0) - size
                for n, size in duck["sizes"].items()
                if res["sizes"].get(n) != size
            }
            res["sizes_minus_duckdb"] = differ
            print(
                f"\n{backend}: member counts "
                + (f"differ from DuckDB's by {differ}" if differ else "equal DuckDB's (all 31)")
            )
    if duck:
        p = duck["preview"]
        print(
            f"\npreview of a 5-condition rule on DuckDB ({p['count']:,} matching, "
            f"{p['runs']} runs): Strata median {_median(p['strata_ms']):.0f} ms, "
            f"p95 {_p95(p['strata_ms']):.0f} ms (aim ≤ {PREVIEW_AIM_MS} ms); hand-written "
            f"median {_median(p['hand_ms']):.0f} ms, p95 {_p95(p['hand_ms']):.0f} ms"
        )
        print("\nper segment on DuckDB, warm, median seconds (RFM: one scoring pass, in the first)")
        print("| segment | members | Strata s | hand-written s | ratio |")
        print("| --- | ---: | ---: | ---: | ---: |")
        warm = duck["runs"]["warm"]
        for name in warm[0]["strata"]:
            s = _median([r["strata"][name]["seconds"] for r in warm])
            h = _median([r["hand"][name]["seconds"] for r in warm])
            print(f"| {name} | {duck['sizes'][name]:,} | {s:.3f} | {h:.3f} | {s / h:.1f}× |")


def _code_state() -> str:
    """The commit of this checkout, and whether its ``src/`` has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", "src").strip()
    return git("rev-parse", "--short", "HEAD").strip() + (" + changes in src/" if changed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--spark-customers", type=int, default=None, help="a smaller size for Spark, if needed"
    )
    parser.add_argument("--backends", default="duckdb,postgres,spark")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--preview-runs", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("STRATA_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--spark-driver-memory",
        default="8g",
        help="heap of the local Spark driver (Spark's default, 1g, is too small for 10M events)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "segments.json"))
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    # Read when the Spark session starts; a local driver's heap cannot be set later.
    os.environ.setdefault(
        "PYSPARK_SUBMIT_ARGS", f"--driver-memory {args.spark_driver_memory} pyspark-shell"
    )
    if "postgres" in backends and not args.postgres:
        print("postgres skipped: give --postgres URL or set STRATA_TEST_POSTGRES_URL")
        backends.remove("postgres")
    results: dict[str, Any] = {}
    customers: dict[str, int] = {}
    events: dict[str, int] = {}
    batches: dict[int, Any] = {}

    def batch_of(n: int):
        if n not in batches:
            batches.clear()  # one business in memory at a time
            started = time.perf_counter()
            batches[n] = generate_business(n, seed=7, end=END)
            print(f"generated {n:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
        return batches[n]

    for backend in backends:
        n = (args.spark_customers or args.customers) if backend == "spark" else args.customers
        batch = batch_of(n)
        customers[backend], events[backend] = n, batch.events.num_rows
        print(f"{backend}: {n:,} customers, {batch.events.num_rows:,} events", flush=True)
        load_before = os.getloadavg()
        if backend == "duckdb":
            results[backend] = bench_duckdb(batch, args.repeat, args.preview_runs)
        else:
            results[backend] = bench_other(backend, batch, args.repeat, args.postgres)
        # Other work on the machine shows here (this bench keeps about 2 cores busy).
        results[backend]["load_average"] = {"before": load_before, "after": os.getloadavg()}
        print(f"  load average before {load_before}, after {os.getloadavg()}", flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    code = _code_state()
    print(f"\nmachine: {machine}; date {dt.date.today()}")
    _table(results, customers, events)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "machine": machine,
                "code": code,
                "strata_from": str(Path(strata.__file__).parent),
                "command": " ".join(["python", *sys.argv]),
                "customers": customers,
                "events": events,
                "results": results,
            },
            indent=1,
            default=str,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
