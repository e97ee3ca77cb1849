"""What the caller asked for: the request body -> a ClassifyRequest.

Accepted bodies: `{"url": ...}` (the guide's), `{"image": "<base64>"}`, a raw image body
(`Content-Type: image/*` or `application/octet-stream`, base64 in the event as API Gateway sends
binary media types), and batches `{"urls": [...]}` / `{"images": [...]}`. Optional `"topk": k`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from lambdavision.core.errors import BadRequest, LambdaVisionError, PayloadTooLarge
from lambdavision.core.events import ApiRequest

DEFAULT_TOPK = 3
DEFAULT_MAX_BATCH = 16
DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024

USAGE = 'send {"url": "https://..."}, {"image": "<base64>"} or the raw image bytes with an image/* Content-Type'


@dataclass
class ClassifyRequest:
    """One image or a batch, each given by URL or by bytes (or already failed to decode)."""

    urls: list[str] = field(default_factory=list)
    images: list[bytes | LambdaVisionError] = field(default_factory=list)
    topk: int = DEFAULT_TOPK
    batch: bool = False
    input_kind: str = "url"


def _decode_base64(value: Any, where: str, max_bytes: int) -> bytes:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where} must be a non-empty base64 string")
    if value.startswith("data:"):  # a data: URL, as a browser's FileReader gives
        _, _, value = value.partition(",")
    if len(value) * 3 // 4 > max_bytes:
        raise PayloadTooLarge(f"{where} is larger than {max_bytes:,} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where} is not valid base64") from None


def _parse_topk(raw: Any) -> int:
    if raw is None:
        return DEFAULT_TOPK
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise BadRequest("topk must be a positive integer")
    return raw


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{where} must be a non-empty string")
    return value.strip()


def parse_json_payload(obj: Any, max_bytes: int, max_batch: int) -> ClassifyRequest:
    if not isinstance(obj, dict):
        raise BadRequest(f"the JSON body must be an object: {USAGE}")
    topk = _parse_topk(obj.get("topk"))
    given = [k for k in ("url", "image", "urls", "images") if obj.get(k) is not None]
    if not given:
        raise BadRequest(f"missing field: {USAGE}")
    if len(given) > 1:
        raise BadRequest(f"send only one of url, image, urls, images (got {', '.join(given)})")
    kind = given[0]
    if kind == "url":
        return ClassifyRequest(urls=[_url(obj["url"], "url")], topk=topk, input_kind="url")
    if kind == "image":
        return ClassifyRequest(
            images=[_decode_base64(obj["image"], "image", max_bytes)], topk=topk, input_kind="base64"
        )
    items = obj[kind]
    if not isinstance(items, list) or not items:
        raise BadRequest(f"{kind} must be a non-empty list")
    if len(items) > max_batch:
        raise PayloadTooLarge(f"{kind} has {len(items)} entries; at most {max_batch} per request")
    if kind == "urls":
        return ClassifyRequest(
            urls=[_url(u, f"urls[{i}]") for i, u in enumerate(items)], topk=topk, batch=True, input_kind="url"
        )
    images: list[bytes | LambdaVisionError] = []
    for i, item in enumerate(items):
        try:
            images.append(_decode_base64(item, f"images[{i}]", max_bytes))
        except LambdaVisionError as exc:  # one bad image does not fail the others
            images.append(exc)
    return ClassifyRequest(images=images, topk=topk, batch=True, input_kind="base64")


def parse_request(
    request: ApiRequest, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES, max_batch: int = DEFAULT_MAX_BATCH
) -> ClassifyRequest:
    """Turn any accepted body into a ClassifyRequest; anything else is a 4xx."""
    if request.json_body is not None:
        return parse_json_payload(request.json_body, max_bytes, max_batch)
    body = request.body
    if not body:
        raise BadRequest(f"the request body is empty: {USAGE}")
    ctype = request.content_type
    raw_image = ctype.startswith("image/") or ctype == "application/octet-stream"
    # Imported here: this module's constants are read by runtime.settings before numpy/Pillow load.
    from lambdavision.core.decode import sniff_format

    if raw_image or (ctype != "application/json" and sniff_format(body) is not None):
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"the image is {len(body):,} bytes; the limit is {max_bytes:,}")
        topk = DEFAULT_TOPK
        if "topk" in request.query:
            try:
                topk = _parse_topk(int(request.query["topk"]))
            except ValueError:
                raise BadRequest("topk must be a positive integer") from None
        return ClassifyRequest(images=[body], topk=topk, input_kind="raw")
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, a 5,000-digit integer
        raise BadRequest(f"the body is not valid JSON ({exc}): {USAGE}") from None
    return parse_json_payload(obj, max_bytes, max_batch)
