"""Command: `logs` — a function's CloudWatch logs, readable (`sam logs` style), raw, tailed or summarised."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from lambdavision.aws.log_records import LogEvent, ReadableLog, summarise_metrics
from lambdavision.aws.logs import fetch_events, function_log_group, parse_time, tail_events, to_ms
from lambdavision.aws.session import aws_errors
from lambdavision.cli.aws_common import aws_options, note, session_for


@click.command("logs")
@click.option(
    "--name",
    "-n",
    required=True,
    help="The function's logical id in the stack (e.g. PyTorchFunction); without --stack-name, its physical name.",
)
@click.option("--stack-name", default=None, help="The stack the function belongs to.")
@click.option(
    "--filter", "pattern", default=None, help="CloudWatch Logs filter pattern, e.g. error or '\"Task timed out\"'."
)
@click.option("--start-time", "-s", default="10m ago", show_default=True, help="'10m ago', '2h ago' or ISO 8601.")
@click.option("--end-time", "-e", default=None, help="'5m ago' or ISO 8601 (default: now).")
@click.option("--tail", "-t", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option(
    "--metrics",
    is_flag=True,
    help="Summarise the window instead: requests, errors, cold starts, p50/p95/p99 latency (from the EMF records).",
)
@click.option("--raw", is_flag=True, help="Print messages as logged (JSON lines unformatted).")
@click.option("--tail-for", type=float, default=None, hidden=True)
@click.option("--poll-interval", type=float, default=1.0, hidden=True)
@aws_options
def logs(
    name: str,
    stack_name: str | None,
    pattern: str | None,
    start_time: str,
    end_time: str | None,
    tail: bool,
    metrics: bool,
    raw: bool,
    tail_for: float | None,
    poll_interval: float,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Print a function's CloudWatch logs (`sam logs` style: stream, time, message).

    lambdavision's handler logs one JSON line and one EMF metrics record per request; they are
    shown as one line per request: request id, status, top class and confidence (or the error),
    total milliseconds, and `cold` for a cold start. --raw prints them as logged; --metrics
    summarises the window instead.
    """
    if tail and end_time:
        raise click.UsageError("--end-time cannot be combined with --tail")
    if metrics and (tail or raw):
        raise click.UsageError("--metrics summarises a time window: it cannot be combined with --tail or --raw")
    now = datetime.now().astimezone()
    start_ms = to_ms(parse_time(start_time, now=now))
    end_ms = to_ms(parse_time(end_time, now=now)) if end_time else None
    session = session_for(region, profile, endpoint_url)
    readable = ReadableLog()

    def show(event: LogEvent) -> None:
        line = event.format() if raw else readable.format(event)
        if line is not None:
            click.echo(line)

    with aws_errors(stack=stack_name):
        group = function_log_group(session.cloudformation(), stack_name, name) if stack_name else f"/aws/lambda/{name}"
        client = session.logs()
        if metrics:
            events = fetch_events(client, group, pattern=pattern, start_ms=start_ms, end_ms=end_ms)
            for line in summarise_metrics(events).lines():
                click.echo(line)
            return
        if not tail:
            for event in fetch_events(client, group, pattern=pattern, start_ms=start_ms, end_ms=end_ms):
                show(event)
            return
        note(f"Tailing {group} (Ctrl-C to stop)…", quiet or not sys.stderr.isatty())
        try:
            tail_events(
                client,
                group,
                pattern=pattern,
                start_ms=start_ms,
                on_event=show,
                poll_seconds=poll_interval,
                stop_after_seconds=tail_for,
            )
        except KeyboardInterrupt:
            return  # Ctrl-C is how a tail ends


__all__ = ["logs"]
