"""Fixtures the template tests share: template.yaml as written, and as the SAM translator
expands it (the form `sam deploy` creates and tools/localstack.py provisions)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localstack  # noqa: E402


@pytest.fixture(scope="module")
def template() -> dict:
    return localstack.load_template()


@pytest.fixture(scope="module")
def expanded(template) -> dict:
    return localstack.expand(template)
