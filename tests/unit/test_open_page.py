"""`init --auth key --open-page`: the page at GET / needs no key; it asks for one and sends it."""

from __future__ import annotations

import pytest

from lambdavision.aws.template import TemplateOptions, build_template
from lambdavision.core.errors import TemplateOptionError
from tests.unit.test_template import CORS, _methods


def test_an_open_page_needs_no_key_while_the_rest_of_the_api_does() -> None:
    methods = _methods(build_template(TemplateOptions(auth="key", open_page=True, cors_origin=CORS)))
    assert {key: props.get("ApiKeyRequired", False) for key, props in methods.items()} == {
        ("POST", "/invocations"): True,
        ("GET", "/"): False,
        ("OPTIONS", "/invocations"): False,
        ("OPTIONS", "/"): False,
    }
    for options in (TemplateOptions(open_page=True), TemplateOptions(auth="key", open_page=True, page=False)):
        with pytest.raises(TemplateOptionError, match="open page"):
            build_template(options)
