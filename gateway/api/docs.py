"""``/docs``: Swagger UI served from the files of the installed ``swagger-ui-bundle-v2`` package, not a CDN,
so the API's documentation works on a machine without internet.

Swagger UI is Apache-2.0 licensed, and so is the package (a maintained fork of spec-first's
``swagger_ui_bundle``, which stopped at Swagger UI 4: too old for FastAPI's OpenAPI 3.1 documents).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "install_docs"]

#: Where Swagger UI's own files are served.
ASSETS = "/docs/assets"


def install_docs(app: FastAPI, *, title: str) -> None:
    """Serve Swagger UI at ``/docs`` for ``app``'s OpenAPI document, its files under :data:`ASSETS`."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
        )
