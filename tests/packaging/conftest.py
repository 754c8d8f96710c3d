"""The deployment package's own tests: what the functions can import, and the handlers run where only
the package exists (`-m packaging` selects them, `-m "not packaging"` skips the slow one)."""

from __future__ import annotations

from typing import Any


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "packaging: runs the handlers in a fresh environment holding only the package")
