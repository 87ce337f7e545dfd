"""CDNOW transaction files (Fader & Hardie): whitespace-separated.

* master, with a header: ``customer_id date number_of_cds dollar_value``;
* 1/10 sample, no header: ``master_id sample_id date cds dollar_value``.

Each row is one purchase (an ``order``); a customer may buy twice on one day, so the
order id is the customer, the date and the purchase's place among that day's rows.
The customer id is the master id in both files, so the two files agree.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.ingest import mapping as M
from strata.ingest.lines import Problems, _rank_within
from strata.ingest.presets import Preset
from strata.ingest.readers import RawTable

MASTER = ["customer_id", "date", "number_of_cds", "dollar_value"]


class CDNow(Preset):
    name, title = "cdnow", "a CDNOW transaction file"
    required = ["customer_id", "timestamp", "revenue"]

    def score(self, raw: RawTable) -> float:
        names = [M.normalise_header(c) for c in raw.columns]
        if raw.has_header:
            return 1.0 if names == MASTER else 0.0
        if raw.num_rows == 0 or len(names) not in (4, 5):
            return 0.0
        first = [raw.table.column(c)[0].as_py() for c in raw.columns]
        date = first[-3]
        return (
            0.9
            if all(str(v).replace(".", "").isdigit() for v in first)
            and len(str(date)) == 8
            and str(date).startswith("19")
            else 0.0
        )

    def mapping(self, raw: RawTable, given: M.Mapping | None = None) -> M.Mapping:
        if given is None or not given.fields:
            c = raw.columns
            given = M.Mapping(
                fields={
                    "customer_id": c[0],
                    "timestamp": c[-3],
                    "quantity": c[-2],
                    "revenue": c[-1],
                }
            )
            given.confidence = dict.fromkeys(given.fields, 1.0)
            given.date_format = "%Y%m%d"
        return super().mapping(raw, given)

    def lines(self, raw: RawTable, mapping: M.Mapping, problems: Problems) -> pa.Table:
        columns, f, keep = self._customer_part(raw, mapping, problems, ["timestamp", "revenue"])
        day = pc.strftime(f["timestamp"], "%Y%m%d")
        base = pc.binary_join_element_wise(columns["external_id"].fill_null(""), day, "-")
        nth = _rank_within(pa.chunked_array([base]))
        order_id = pc.binary_join_element_wise(base, pa.array(nth.astype(str)), "-")
        quantity = f.get("quantity", pa.array(np.ones(raw.num_rows)))
        unit = pc.divide(f["revenue"], pc.if_else(pc.greater(quantity, 0), quantity, 1.0))
        return pa.table(
            {
                **columns,
                "event_type": pa.array(["order"] * raw.num_rows, pa.string()),
                "order_id": order_id,
                "timestamp": f["timestamp"],
                "revenue": f["revenue"],
                "quantity": quantity,
                "unit_price": unit,
                "product_id": pa.array(["CD"] * raw.num_rows, pa.string()),
            }
        ).filter(pa.array(keep))
