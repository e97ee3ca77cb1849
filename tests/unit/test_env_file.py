"""env.json: sections that name no function are reported with the closest name (SAM ignores them)."""

from __future__ import annotations

from lambdavision.local.env_file import parse_env_document, unmatched_sections


def test_a_misspelt_function_name_is_reported_with_the_closest_one() -> None:
    env = parse_env_document(
        {"PyTorchFuncton": {"MODEL_BUCKET": "b"}, "Parameters": {"X": "1"}, "PyTorchFunction": {}, "Zzz": {}},
        "env.json",
    )
    warnings = unmatched_sections(env, {"PyTorchFunction", "OtherFunction"}, "env.json")
    assert warnings == [
        "env.json: 'PyTorchFuncton' matches no function of the template, so it is ignored "
        "(did you mean PyTorchFunction?)",
        "env.json: 'Zzz' matches no function of the template, so it is ignored "
        "(the template's functions: OtherFunction, PyTorchFunction)",
    ]
    assert unmatched_sections(parse_env_document({"Parameters": {}, "OtherFunction": {}}), {"OtherFunction"}) == []
