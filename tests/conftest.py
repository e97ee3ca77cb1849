"""Fixtures shared across the suite live in tests/fixtures/, one module per area."""

pytest_plugins = [
    "tests.fixtures.colour",
    "tests.fixtures.image_server",
    "tests.fixtures.models",
    "tests.fixtures.moto_server",
    "tests.fixtures.pools",
]
