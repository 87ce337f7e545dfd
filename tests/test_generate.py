"""The synthetic business: its contract, its determinism and its realistic shape."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from strata.ingest.generate import PERSONAS, generate_business

END = datetime.date(2026, 6, 30)
PERIOD_END = pd.Timestamp(END) + pd.Timedelta(days=1)  # timestamps fall before this
N = 2000

CUSTOMERS = pa.schema(
    [
        ("external_id", pa.string()),
        ("email", pa.string()),
        ("name", pa.string()),
        ("phone", pa.string()),
        ("country", pa.string()),
        ("city", pa.string()),
        ("gender", pa.string()),
        ("birth_date", pa.date32()),
        ("signup_date", pa.date32()),
        ("company_size", pa.int64()),
        ("industry", pa.string()),
        ("plan", pa.string()),
    ]
)
EVENTS = pa.schema(
    [
        ("external_id", pa.string()),
        ("event_type", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("revenue", pa.float64()),
        ("currency", pa.string()),
        ("order_id", pa.string()),
        ("properties", pa.string()),
        ("event_key", pa.string()),
    ]
)
ITEMS = pa.schema(
    [
        ("event_key", pa.string()),
        ("line_no", pa.int32()),
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("quantity", pa.float64()),
        ("unit_price", pa.float64()),
    ]
)
TRUTH = pa.schema(
    [
        ("external_id", pa.string()),
        ("persona", pa.string()),
        ("churned", pa.bool_()),
        ("churned_at", pa.timestamp("us")),
    ]
)


@pytest.fixture(scope="module")
def batch():
    return generate_business(N, seed=7, end=END)


@pytest.fixture(scope="module")
def customers(batch) -> pd.DataFrame:
    c = batch.customers.to_pandas().merge(batch.truth.to_pandas(), on="external_id")
    c["signup"] = pd.to_datetime(c["signup_date"])
    return c.set_index("external_id", drop=False)


@pytest.fixture(scope="module")
def events(batch) -> pd.DataFrame:
    return batch.events.to_pandas()


@pytest.fixture(scope="module")
def orders(events) -> pd.DataFrame:
    return events[events.event_type == "order"]


def _revenue_by_customer(events: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    return events.groupby("external_id")["revenue"].sum().reindex(customers.index, fill_value=0)


# -- contract -------------------------------------------------------------------------------
def test_tables_have_the_contract_columns_and_types(batch):
    assert batch.customers.schema.equals(CUSTOMERS)
    assert batch.events.schema.equals(EVENTS)
    assert batch.items.schema.equals(ITEMS)
    assert batch.truth.schema.equals(TRUTH)
    assert batch.customers.num_rows == batch.truth.num_rows == N


def test_same_seed_gives_identical_business(batch):
    again = generate_business(N, seed=7, end=END)
    for name in ("customers", "events", "items", "truth"):
        assert getattr(again, name).equals(getattr(batch, name)), name


def test_different_seeds_give_different_businesses(batch):
    other = generate_business(N, seed=8, end=END)
    assert not other.customers.equals(batch.customers)
    assert not other.events.equals(batch.events)
    assert not other.truth.equals(batch.truth)


def test_end_defaults_to_today_utc():
    before = datetime.datetime.now(datetime.UTC).date()
    small = generate_business(200, seed=1)
    after = datetime.datetime.now(datetime.UTC).date()
    last = pc.max(small.events.column("timestamp")).as_py()
    assert before - datetime.timedelta(days=30) <= last.date() <= after
    assert pc.max(small.customers.column("signup_date")).as_py() <= after


@pytest.mark.parametrize("years", [2.0, 0.5])
def test_timestamps_fall_within_the_years_before_the_end(years):
    b = generate_business(300, seed=3, end=END, years=years)
    start = PERIOD_END - pd.Timedelta(days=365.25 * years)
    ts = b.events.column("timestamp").to_pandas()
    assert ts.min() >= start
    assert ts.max() < PERIOD_END
    signup = pd.to_datetime(b.customers.column("signup_date").to_pandas())
    assert signup.min() >= start.normalize()
    churned_at = b.truth.column("churned_at").drop_null().to_pandas()
    assert churned_at.max() < PERIOD_END


def test_rejects_impossible_arguments():
    with pytest.raises(ValueError, match="customers"):
        generate_business(0)
    with pytest.raises(ValueError, match="years"):
        generate_business(10, years=0)


# -- customers ------------------------------------------------------------------------------
def test_customer_ids_and_emails_are_unique_and_plausible(customers):
    assert customers.external_id.is_unique
    assert customers.external_id.str.fullmatch(r"C\d{7}").all()
    assert customers.email.is_unique
    assert customers.email.str.fullmatch(r"[a-z][a-z._]*\d+@[a-z0-9]+(\.[a-z]+)+").all()
    assert customers.name.str.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+").all()
    assert customers.phone.str.fullmatch(r"\+[1-9]\d{7,14}").all()


def test_countries_are_skewed_and_cities_belong_to_their_country(customers):
    share = customers.country.value_counts(normalize=True)
    assert share.index[0] == "US"
    assert 0.3 < share["US"] < 0.5
    assert share.size >= 15
    assert customers.country.str.fullmatch(r"[A-Z]{2}").all()
    # A city name never appears under two countries.
    assert customers.groupby("city").country.nunique().max() == 1
    assert customers.city.nunique() > 50


def test_gender_and_birth_date_describe_adults(customers):
    gender = customers.gender.dropna()
    assert set(gender) == {"female", "male", "nonbinary"}
    assert 0.01 < customers.gender.isna().mean() < 0.15
    born = pd.to_datetime(customers.birth_date)
    assert 0.05 < born.isna().mean() < 0.25
    known = born.notna()
    age_at_end = (PERIOD_END - born[known]).dt.days / 365.25
    age_at_signup = (customers.signup[known] - born[known]).dt.days / 365.25
    assert age_at_end.max() <= 80
    assert age_at_signup.min() >= 18
    assert 30 < age_at_end.median() < 50


def test_company_size_and_industry_only_for_businesses(customers):
    business = customers.persona == "b2b_account"
    assert business.sum() > 50
    assert customers.company_size.notna().equals(business)
    assert customers.industry.notna().equals(business)
    size = customers.company_size[business]
    assert size.min() >= 1
    # Heavy-tailed: many one-person and small companies, a few very large ones.
    bands = pd.cut(size, [0, 1, 10, 50, 200, 1000, np.inf])
    assert (bands.value_counts() > 0).all()
    assert size.median() <= 50
    assert size.max() > 1000
    assert customers.industry[business].nunique() >= 8


def test_plans_are_known_and_businesses_pay_more(customers):
    assert set(customers.plan) <= {"free", "basic", "pro", "business"}
    business = customers.persona == "b2b_account"
    assert (customers.plan[business] != "free").all()
    assert (customers.plan[~business] == "free").mean() > 0.3


# -- events ---------------------------------------------------------------------------------
def test_every_event_belongs_to_a_customer(events, customers):
    assert events.external_id.isin(customers.index).all()


def test_events_come_in_time_order(events):
    assert events.timestamp.is_monotonic_increasing
    assert events.timestamp.dt.microsecond.eq(0).all()  # whole seconds


def test_event_keys_are_unique_and_name_their_event(events):
    assert events.event_key.is_unique
    prefix = events.event_key.str.split(":").str[0]
    assert (prefix == events.event_type).all()
    money = events.event_type.isin(["order", "refund"])
    assert (
        events.event_key[money] == events.event_type[money] + ":" + events.order_id[money]
    ).all()


def test_event_types_come_in_plausible_ratios(events):
    n = events.event_type.value_counts()
    assert set(n.index) == {
        "page_view",
        "add_to_cart",
        "order",
        "refund",
        "email_open",
        "support_ticket",
    }
    assert n["page_view"] > 2 * n["add_to_cart"]
    assert n["add_to_cart"] > n["order"] > 10 * n["refund"]
    assert n["email_open"] > n["order"]
    assert n["support_ticket"] < n["order"] / 3


def test_about_ten_events_per_customer(events):
    assert 8 <= len(events) / N <= 13


def test_revenue_and_currency_only_on_orders_and_refunds(events):
    is_order = events.event_type == "order"
    is_refund = events.event_type == "refund"
    money = is_order | is_refund
    assert (events.revenue[is_order] > 0).all()
    assert (events.revenue[is_refund] < 0).all()
    assert events.revenue[~money].isna().all()
    assert (events.currency[money] == "USD").all()
    assert events.currency[~money].isna().all()
    assert events.order_id[~money].isna().all()
    assert events.order_id[is_order].str.fullmatch(r"O\d{8}").all()
    assert events.order_id[is_order].is_unique
    assert events.order_id[is_refund].is_unique
    assert np.allclose(events.revenue[money], events.revenue[money].round(2))


EXPECTED_PROPERTIES = {
    "page_view": {"path"},
    "add_to_cart": {"product_id", "quantity"},
    "order": {"items", "channel"},
    "refund": {"reason", "partial"},
    "email_open": {"campaign"},
    "support_ticket": {"topic", "priority"},
}


def test_properties_are_json_objects_with_the_expected_keys(events, batch):
    for kind, keys in EXPECTED_PROPERTIES.items():
        rows = events.properties[events.event_type == kind]
        parsed = [json.loads(p) for p in rows]
        assert parsed, kind
        assert all(isinstance(p, dict) and set(p) == keys for p in parsed), kind
    paths = [json.loads(p)["path"] for p in events.properties[events.event_type == "page_view"]]
    assert all(p.startswith("/") for p in paths)
    assert sum(p.startswith("/products/") for p in paths) > len(paths) / 2
    channels = {json.loads(p)["channel"] for p in events.properties[events.event_type == "order"]}
    assert channels == {"web", "app", "store"}
    # An order's "items" is its number of lines.
    items = batch.items.to_pandas()
    lines = items.groupby("event_key").size()
    order_rows = events[events.event_type == "order"]
    said = order_rows.properties.map(lambda p: json.loads(p)["items"])
    assert (said.to_numpy() == lines.reindex(order_rows.event_key).to_numpy()).all()


# -- orders, lines, refunds -----------------------------------------------------------------
def test_order_revenue_equals_its_lines(batch, orders):
    items = batch.items.to_pandas()
    assert set(items.event_key) == set(orders.event_key)  # every order has lines, only orders
    assert (items.quantity > 0).all()
    assert (items.unit_price > 0).all()
    assert (items.quantity == items.quantity.round()).all()
    amount = (items.quantity * items.unit_price).groupby(items.event_key).sum().round(2)
    revenue = orders.set_index("event_key").revenue
    assert np.allclose(amount.reindex(revenue.index), revenue, atol=0.001, rtol=0)


def test_order_lines_are_numbered_from_zero(batch):
    items = batch.items.to_pandas()
    expected = items.groupby("event_key").cumcount()
    assert (items.line_no == expected).all()
    assert (
        items.groupby("event_key").product_id.nunique().equals(items.groupby("event_key").size())
    )  # a product appears once per order


def test_catalogue_has_a_few_hundred_products_with_zipf_popularity(batch):
    items = batch.items.to_pandas()
    assert items.groupby("product_id").product_name.nunique().max() == 1
    assert items.groupby("product_name").product_id.nunique().max() == 1
    popularity = items.product_id.value_counts()
    assert 100 <= popularity.size <= 500
    top_tenth = popularity.iloc[: popularity.size // 10].sum() / popularity.sum()
    assert top_tenth > 0.35


def test_businesses_buy_larger_quantities(batch, orders, customers):
    items = batch.items.to_pandas()
    buyer = orders.set_index("event_key").external_id
    persona = customers.persona.reindex(buyer.reindex(items.event_key)).to_numpy()
    business = persona == "b2b_account"
    assert np.median(items.quantity[business]) >= 2
    assert np.median(items.quantity[~business]) == 1
    assert items.quantity[business].mean() > 3 * items.quantity[~business].mean()


def test_refunds_follow_their_order_and_never_exceed_it(events, orders):
    refunds = events[events.event_type == "refund"]
    assert 0.01 < len(refunds) / len(orders) < 0.08
    assert refunds.order_id.str.fullmatch(r"RO\d{8}").all()
    original = orders.set_index("order_id").loc[refunds.order_id.str[1:]]
    assert (original.external_id.to_numpy() == refunds.external_id.to_numpy()).all()
    assert (original.timestamp.to_numpy() < refunds.timestamp.to_numpy()).all()
    refunded = -refunds.revenue.to_numpy()
    assert (refunded <= original.revenue.to_numpy() + 1e-9).all()
    # Some refunds return the whole order, some only part of it.
    whole = np.isclose(refunded, original.revenue.to_numpy())
    assert 0.2 < whole.mean() < 0.95


# -- the shape of the business ------------------------------------------------------------
def test_top_fifth_of_customers_bring_most_revenue(events, customers):
    revenue = _revenue_by_customer(events, customers).sort_values(ascending=False)
    top = revenue.iloc[: N // 5].sum() / revenue.sum()
    assert 0.7 < top < 0.9


def test_november_december_sell_more(orders):
    month = orders.timestamp.dt.to_period("M")
    per_day = orders.groupby(month).size()
    per_day = per_day / per_day.index.days_in_month
    holidays = per_day[[pd.Period("2025-11"), pd.Period("2025-12")]].mean()
    around = per_day[[pd.Period(m) for m in ("2025-09", "2025-10", "2026-01", "2026-02")]].mean()
    assert holidays > 1.3 * around
    full_months = per_day.iloc[1:]  # the period starts on the last day of a month
    assert per_day[per_day.index.month >= 11].mean() > 1.2 * full_months.mean()


def test_orders_follow_a_daily_and_weekly_rhythm(orders, batch):
    hour = orders.timestamp.dt.hour
    assert hour.between(2, 5).sum() < 0.5 * hour.between(18, 21).sum()
    tickets = batch.events.filter(pc.equal(batch.events.column("event_type"), "support_ticket"))
    weekday = tickets.column("timestamp").to_pandas().dt.day_of_week
    assert (weekday >= 5).mean() < 0.15  # support works office hours


def test_signups_grow_month_by_month(customers):
    months = pd.period_range("2024-07", "2026-06", freq="M")  # the full months of the period
    full = customers.signup.dt.to_period("M").value_counts().reindex(months, fill_value=0)
    assert (full > 0).all()
    assert full.iloc[-6:].sum() > 1.4 * full.iloc[:6].sum()
    assert np.corrcoef(np.arange(len(full)), full.to_numpy())[0, 1] > 0.6


def test_no_event_precedes_signup(events, customers):
    signup = customers.signup.reindex(events.external_id).to_numpy()
    assert (events.timestamp.dt.normalize().to_numpy() >= signup).all()
    # Customers join in a visit: their first event is on the signup day.
    first = events.groupby("external_id").timestamp.min().dt.normalize()
    assert (first == customers.signup.reindex(first.index)).mean() > 0.95


def test_churned_customers_go_quiet_after_churn(events, customers):
    churned = customers[customers.churned]
    assert 0.25 <= len(churned) / N <= 0.40
    assert customers.churned_at.isna().equals(~customers.churned)
    assert (churned.churned_at > churned.signup).all()
    churned_at = customers.churned_at.reindex(events.external_id).to_numpy()
    after = events.timestamp.to_numpy() >= churned_at  # NaT compares False
    assert not after.any()


def test_customers_who_stay_keep_coming_back(events, customers):
    stayed = customers[
        ~customers.churned & (customers.signup < PERIOD_END - pd.Timedelta(365, "D"))
    ]
    assert len(stayed) > 100
    mine = events[events.external_id.isin(stayed.index)]
    since = mine.timestamp - stayed.signup.reindex(mine.external_id).to_numpy()
    last_quarter = mine.timestamp >= PERIOD_END - pd.Timedelta(90, "D")
    middle = (since >= pd.Timedelta(30, "D")) & ~last_quarter
    middle_days = (PERIOD_END - pd.Timedelta(90, "D")) - (stayed.signup + pd.Timedelta(30, "D"))
    rate_middle = middle.sum() / middle_days.dt.days.sum()
    rate_last = last_quarter.sum() / (90 * len(stayed))
    assert rate_last > 0.6 * rate_middle
    assert mine.external_id[last_quarter].nunique() > 0.5 * len(stayed)


def test_one_time_buyers_churn_more(events, customers, orders):
    by_persona = customers.groupby("persona").churned.mean()
    assert set(by_persona.index) == set(PERSONAS)
    assert by_persona["one_time"] > 2 * by_persona["regular"] > 2 * by_persona["vip"]
    n_orders = orders.groupby("external_id").size().reindex(customers.index, fill_value=0)
    once = customers.churned[n_orders == 1].mean()
    often = customers.churned[n_orders >= 3].mean()
    assert once > often + 0.15
    # One-time buyers buy exactly once, at signup (unless the period ends during that visit).
    one_time = n_orders[customers.persona == "one_time"]
    assert (one_time <= 1).all()
    assert (one_time == 1).mean() > 0.99


def test_churners_open_more_support_tickets(events, customers):
    tickets = events[events.event_type == "support_ticket"]
    who = customers.loc[tickets.external_id]
    until = who.churned_at.fillna(PERIOD_END).to_numpy()
    recent = tickets.timestamp.to_numpy() >= until - pd.Timedelta(45, "D").to_numpy()
    complainers = who[recent]
    churner_share = complainers[complainers.churned].index.nunique() / customers.churned.sum()
    stayer_share = complainers[~complainers.churned].index.nunique() / (~customers.churned).sum()
    assert churner_share > 5 * stayer_share
    assert churner_share > 0.05
