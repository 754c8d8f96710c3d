"""Fixtures: an emulated organization (tests/organization/world.py) with keyguard in organization mode."""

from __future__ import annotations

from typing import Any

import pytest

from tests.organization.world import Organization, build


@pytest.fixture
def org(account: Any, monkeypatch: pytest.MonkeyPatch) -> Organization:
    world = build(account)
    for key, value in world.environ().items():
        monkeypatch.setenv(key, value)
    return world
