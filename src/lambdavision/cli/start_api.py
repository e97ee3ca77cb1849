"""`lambdavision local start-api`: the template's API on a local HTTP server, like `sam local start-api`.

The serving is `local.api_server` (`LocalApi`, `serve`); this command parses options, calls `serve`,
and turns SIGTERM into a clean stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from lambdavision.cfn import find_default_template, load_app, parse_parameter_overrides
from lambdavision.cli.common import GreedyOptionsCommand, cpu_share_option
from lambdavision.cli.local import RUNTIME_NOTE, USE_VENV_HELP, layout_for
from lambdavision.local.api_server import serve
from lambdavision.local.gateway import DEFAULT_INTEGRATION_TIMEOUT_S
from lambdavision.local.http_server import DEFAULT_CLIENT_TIMEOUT_S


class _StartApiCommand(GreedyOptionsCommand):
    greedy_options = ("--parameter-overrides",)


@click.command("start-api", cls=_StartApiCommand, epilog=RUNTIME_NOTE)
@click.option(
    "-t",
    "--template",
    "template_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SAM or CloudFormation template.  [default: template.yaml (or .yml, .json) here]",
)
@click.option(
    "-n",
    "--env-vars",
    "env_file",
    type=click.Path(exists=True, dir_okay=False),
    help='JSON of environment variables: {"Function": {"VAR": "value"}, "Parameters": {...}}.',
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "-p", "--port", default=3000, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port."
)
@click.option(
    "--concurrency",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Environments per function serving requests at once; more requests queue.",
)
@click.option("--warm", is_flag=True, help="Start the environments before the first request.")
@click.option(
    "--parameter-overrides",
    multiple=True,
    metavar="KEY=VALUE ...",
    help="Template parameters: K=V words, 'K=V K2=V2', or ParameterKey=K,ParameterValue=V.",
)
@click.option("--client-timeout", default=DEFAULT_CLIENT_TIMEOUT_S, type=click.FloatRange(min=0.1), hidden=True)
@click.option(
    "--integration-timeout",
    default=DEFAULT_INTEGRATION_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds before the client gets API Gateway's 504 (the invocation goes on), as API Gateway REST.",
)
@click.option("--use-venv", is_flag=True, help=USE_VENV_HELP)
@cpu_share_option
def start_api(
    template_path: Path | None,
    env_file: str | None,
    host: str,
    port: int,
    concurrency: int,
    warm: bool,
    parameter_overrides: tuple[str, ...],
    client_timeout: float,
    integration_timeout: float,
    use_venv: bool,
    cpu_share: bool,
) -> None:
    """Serve the template's API locally, like API Gateway in front of Lambda, without Docker.

    Every API method of the template is mounted; each function gets up to --concurrency
    environments (real awslambdaric processes), warm between requests. Ctrl-C or SIGTERM stops
    the server and every environment.
    """
    app = load_app(
        template_path or find_default_template(Path.cwd()),
        parameter_overrides=parse_parameter_overrides(parameter_overrides),
    )
    layouts, descriptions = {}, {}
    for function_id in dict.fromkeys(route.function_id for route in app.routes):
        spec = app.functions.get(function_id)
        if spec is not None and not spec.unavailable_reason:
            layout, descriptions[function_id] = layout_for(app, spec, use_venv)
            if layout is not None:
                layouts[function_id] = layout
    stop, serving = threading.Event(), threading.Event()
    previous = signal.signal(signal.SIGTERM, _stop_on_signal(stop, serving))
    try:
        serve(
            app,
            env_file=env_file,
            host=host,
            port=port,
            concurrency=concurrency,
            warm=warm,
            ready=lambda _url: serving.set(),
            stop=stop,
            client_timeout_s=client_timeout,
            integration_timeout_s=integration_timeout,
            layouts=layouts,
            descriptions=descriptions,
            cpu_share=cpu_share,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_on_signal(stop: threading.Event, serving: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        first = not stop.is_set()
        stop.set()
        if first and not serving.is_set():  # still starting (--warm): interrupt it, like Ctrl-C; once,
            raise KeyboardInterrupt  # so a second signal cannot cut the cleanup short

    return handler


__all__ = ["start_api"]
