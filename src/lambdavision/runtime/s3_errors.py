"""S3's error answers: its <Error> document read, and turned into an ArtifactError naming the object."""

from __future__ import annotations

import http.client

from lambdavision.core.errors import ArtifactError
from lambdavision.core.sigv4 import GetRequest

ERROR_BODY_CAP = 64 * 1024  # S3's error documents are < 1 KB; never read a large body as one


def error_from(request: GetRequest, response: http.client.HTTPResponse) -> ArtifactError:
    try:
        body = response.read(ERROR_BODY_CAP)
    except (OSError, http.client.HTTPException):
        body = b""
    code, message = parse_error(body)
    if code:
        text = f"{request.uri}: S3 said {code}: {message or response.reason}"
    else:
        text = f"{request.uri}: S3 answered HTTP {response.status} {_one_line(response.reason)}".rstrip()
    bucket_region = response.getheader("x-amz-bucket-region")
    if bucket_region and bucket_region != request.region:
        text += f" (the bucket is in {bucket_region}, not {request.region}: set AWS_REGION)"
    return ArtifactError(text)


def parse_error(body: bytes) -> tuple[str | None, str | None]:
    """S3's <Error><Code>..</Code><Message>..</Message></Error>: (code, message), None if absent."""
    if not body.lstrip().startswith(b"<"):
        return None, None
    import xml.etree.ElementTree as ElementTree  # only an error answer needs it

    try:
        root = ElementTree.fromstring(body[:ERROR_BODY_CAP])
    except ElementTree.ParseError:
        return None, None
    found: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]  # with or without a namespace
        if name in ("Code", "Message") and name not in found and element.text:
            found[name] = _one_line(element.text)
    return found.get("Code"), found.get("Message")


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


__all__ = ["ERROR_BODY_CAP", "error_from", "parse_error"]
