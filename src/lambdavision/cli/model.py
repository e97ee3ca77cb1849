"""`lambdavision predict`: classify one image (file or URL) with an artifact, print the answer."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lambdavision.core.errors import BadRequest


@click.command()
@click.argument("image")
@click.option("--model", "-m", "model", required=True, help="Artifact: a path, file://, or s3://bucket/key.")
@click.option("--topk", "-k", default=3, show_default=True, type=click.IntRange(min=1), help="How many classes.")
def predict(image: str, model: str, topk: int) -> None:
    """Classify IMAGE (a file path or an http(s) URL) and print the JSON answer."""
    from lambdavision.runtime.fetch import FetchPolicy, fetch
    from lambdavision.runtime.loader import load_classifier

    classifier = load_classifier(model)
    if image.startswith(("http://", "https://")):
        # Your own machine fetching for you: private addresses are fine here (not on Lambda).
        data = fetch(image, FetchPolicy(allow_private=True)).content
    else:
        path = Path(image)
        if not path.is_file():
            raise BadRequest(f"no such image file: {image}")
        data = path.read_bytes()
    prediction = classifier.classify([data], topk)[0]
    click.echo(json.dumps(prediction.to_dict(), indent=2))


def register(cli: click.Group) -> None:
    cli.add_command(predict)
