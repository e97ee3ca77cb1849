"""Fixtures shared across the suite live in tests/fixtures/, one module per area."""

import os
import signal

import pytest

pytest_plugins = [
    "tests.fixtures.build_cache",
    "tests.fixtures.colour",
    "tests.fixtures.fastai_models",
    "tests.fixtures.guide_app",
    "tests.fixtures.image_server",
    "tests.fixtures.models",
    "tests.fixtures.moto_server",
    "tests.fixtures.pools",
    "tests.fixtures.tree_guard",
    "tests.memory.client",
]


def pytest_configure(config: pytest.Config) -> None:
    # Started from a background shell (`bash .ci/run &`, nohup), the runner inherits SIGINT
    # *ignored*, and so would every process a test starts: Ctrl-C tests of start-api and
    # `logs --tail` would then wait in vain. A handler here is reset to the default on exec, so the
    # processes the tests start get Ctrl-C as a terminal would deliver it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # `local invoke`, `start-api` and `bench` hold each environment to Lambda's CPU share by default:
    # a 128-256 MB test function would get 7-15 % of a CPU and the suite would crawl. Off for the
    # suite; tests/functional/test_cpu_quota.py turns it on and measures it.
    os.environ.setdefault("LAMBDAVISION_CPU_SHARE", "0")
