"""Write the API's OpenAPI schema to ``web/openapi.json``, from the app itself.

The web app's client types are generated from this file (``npm run gen:api`` in
``web/``, run by ``npm run build``), never written by hand. Run:
``.venv/bin/python scripts/export_openapi.py``; ``tests/test_web.py`` checks it is current.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from strata.api import create_app
from strata.config import Settings

TARGET = Path(__file__).resolve().parent.parent / "web" / "openapi.json"


def render() -> str:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            database_url=f"sqlite:///{home}/catalog.db",
            warehouse_url="duckdb://:memory:",
        )
        app = create_app(settings)
        schema = app.openapi()
        app.state.service.close()
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
