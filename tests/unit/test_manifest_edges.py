"""The manifest at its edges: what mutation testing (`make mutate`) found unpinned.

Its JSON round-trips (every key, the head with its activation), is written in one canonical form
(sorted keys, 2-space indent, a final newline: the artifact is byte-for-byte deterministic),
refuses a sigmoid threshold outside (0, 1) at both ends, and names where each refusal is.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from lambdavision.core.errors import ArtifactError
from lambdavision.core.head import sigmoid_head
from lambdavision.core.manifest import Head, Manifest, format_version_for, is_bare_name
from lambdavision.core.preprocess import Preprocessing

WHERE = "m.tar.gz: lambdavision.json"


def raw_manifest(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format_version": 3,
        "preprocessing": Preprocessing().to_dict(),
        "num_classes": 2,
        "sha256": {"classes.txt": hashlib.sha256(b"a\nb\n").hexdigest()},
        "extra": {"by": "test"},
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def load(**fields: Any) -> Manifest:
    return Manifest.from_json(json.dumps(raw_manifest(**fields)).encode(), where=WHERE)


def refusal(**fields: Any) -> str:
    with pytest.raises(ArtifactError) as caught:
        load(**fields)
    return caught.value.message


@pytest.mark.parametrize("head", [Head(), sigmoid_head(0.3)])
def test_a_format_3_manifest_round_trips_with_its_head(head: Head) -> None:
    """Rule: to_json then from_json gives the same manifest, softmax or sigmoid head."""
    manifest = Manifest(3, Preprocessing(), 2, {"classes.txt": "0" * 64}, {"by": "test"}, head)
    again = Manifest.from_json(manifest.to_json(), where=WHERE)
    assert again == manifest
    assert json.loads(manifest.to_json())["head"]["activation"] == head.activation


def test_the_json_is_canonical() -> None:
    """Rule: sorted keys at every level, two-space indent, one final newline."""
    manifest = Manifest(3, Preprocessing(), 2, {"z.txt": "1" * 64, "classes.txt": "0" * 64}, {"b": 1, "a": 2})
    text = manifest.to_json().decode()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.splitlines()[1].startswith('  "extra": {')  # "extra" sorts first, indented by two
    assert '\n    "a": 2' in text

    def keys_sorted(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        assert [k for k, _ in pairs] == sorted(k for k, _ in pairs)
        return dict(pairs)

    json.loads(text, object_pairs_hook=keys_sorted)


def test_format_version_for_a_sigmoid_head_alone_is_3() -> None:
    """Rule: a sigmoid head needs format 3 even with no preprocessing steps (older readers would softmax it)."""
    assert format_version_for(Preprocessing(), sigmoid_head(0.5), external_weights=False) == 3
    assert format_version_for(Preprocessing(), Head(), external_weights=False) == 1
    assert format_version_for(Preprocessing(), Head(), external_weights=True) == 2


@pytest.mark.parametrize("threshold", [0, 0.0, 1, 1.0, 1.5, -0.1, True, "0.5", None])
def test_a_sigmoid_threshold_must_be_strictly_between_0_and_1(threshold: Any) -> None:
    """Rule: 0 < threshold < 1, a number, not a bool."""
    message = refusal(head={"activation": "sigmoid", "threshold": threshold})
    assert message == f"{WHERE}: head: a sigmoid head needs a threshold between 0 and 1, got {threshold!r}"


def test_a_threshold_just_inside_the_bounds_is_read() -> None:
    assert load(head={"activation": "sigmoid", "threshold": 0.999}).head == Head("sigmoid", 0.999)
    assert load(head={"activation": "sigmoid", "threshold": 0.001}).head.threshold == 0.001


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"head": ["sigmoid"]}, "head: must be an object, got list"),
        ({"head": {"activation": "relu"}}, "head: activation must be 'softmax' or 'sigmoid', got 'relu'"),
        ({"format_version": 0}, "format_version must be >= 1, got 0"),
        ({"sha256": {}}, "sha256 does not list classes.txt"),
        ({"extra": ["x"]}, "'extra' must be an object, got list"),
        ({"preprocessing": None}, "missing field 'preprocessing'"),
        ({"preprocessing": []}, "field 'preprocessing' must be dict, got list"),
        ({"num_classes": None}, "missing field 'num_classes'"),
    ],
)
def test_refusals_say_where_and_why(fields: dict[str, Any], message: str) -> None:
    """Rule: every refusal starts with where the manifest is, then what is wrong."""
    assert refusal(**fields) == f"{WHERE}: {message}"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a\x00b", 3])
def test_a_member_name_must_be_bare(name: object) -> None:
    """Rule: no empty, dot or dot-dot names, no separators of either kind, no NUL."""
    assert not is_bare_name(name)
    assert is_bare_name("model.onnx") and is_bare_name("..a") and is_bare_name("._x")


@pytest.mark.parametrize("threshold", [0, 1, 0.0, 1.0, -0.5, 2, float("nan"), float("inf"), "0.5", None])
def test_sigmoid_head_refuses_a_threshold_outside_0_1(threshold: Any) -> None:
    """Rule: the writer's side of the same bound: 0 < threshold < 1, finite, a number."""
    with pytest.raises(ValueError) as caught:
        sigmoid_head(threshold)
    assert str(caught.value) == f"the threshold must be between 0 and 1, got {threshold!r}"


def test_sigmoid_head_takes_thresholds_just_inside_the_bounds() -> None:
    assert sigmoid_head(0.001) == Head("sigmoid", 0.001)
    assert sigmoid_head(0.999) == Head("sigmoid", 0.999)
    assert sigmoid_head(1e-300).threshold == 1e-300
