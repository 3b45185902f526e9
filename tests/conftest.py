"""Shared fixtures: every test session gets its own kernel cache directory, shared by
its xdist workers (one gcc run per kernel, not one per worker; the cache publishes
entries atomically, so two workers building the same kernel is safe). A test that
asserts a first build is a cache miss gives itself a private cache."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # each worker's base temp is <run>/popen-gwN: the run's folder is shared
        path = tmp_path_factory.getbasetemp().parent / "tdsl-cache"
        path.mkdir(exist_ok=True)
    else:
        path = tmp_path_factory.mktemp("tdsl-cache")
    old = os.environ.get("TDSL_CACHE_DIR")
    os.environ["TDSL_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TDSL_CACHE_DIR", None)
    else:
        os.environ["TDSL_CACHE_DIR"] = old


def pytest_collection_modifyitems(items):
    """The tests marked slow (half a minute or more: a tuning tutorial, the fuzzer,
    nbgrader) run first: xdist's workers then end the run together on short tests
    instead of one of them waiting for the other's long one."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """A cache of the module's own (for tests that check hits and misses)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TDSL_CACHE_DIR", str(tmp_path_factory.mktemp("private-cache")))
        yield
