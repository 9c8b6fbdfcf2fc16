"""TODO"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import LookupsFail


@pytest.fixture
def lookups_fail(svix: Any) -> Iterator[LookupsFail]:
    proxy = LookupsFail(svix.url)
    yield proxy
    proxy.close()
