"""Shared fixtures: every test session gets its own kernel cache directory."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    import os
    path = tmp_path_factory.mktemp("tdsl-cache")
    old = os.environ.get("TDSL_CACHE_DIR")
    os.environ["TDSL_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TDSL_CACHE_DIR", None)
    else:
        os.environ["TDSL_CACHE_DIR"] = old
