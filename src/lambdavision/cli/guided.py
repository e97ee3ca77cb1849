"""`deploy --guided`: ask for the settings of a deploy, as `sam deploy --guided` does, and keep them.

Asked (each with a default: the flag or lambdavision.toml's value, else a sensible one): stack name,
region, the S3 bucket for code packages, each template parameter. The capabilities follow from the
template (CAPABILITY_IAM when it creates IAM resources, NAMED_IAM when it names them). After a summary
and a confirmation, the answers are saved to lambdavision.toml (`[deploy]`, and `[package]`
s3-bucket, so `lambdavision package` needs no flag next time), then the deploy runs with them.
Answers can be piped in on stdin, one per line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from lambdavision.aws.config import CONFIG_NAME, find_config, write_config
from lambdavision.cfn import plain_template, read_template

DEFAULT_STACK = "pytorch-sam-app"
DEFAULT_TEMPLATES = ("packaged.yaml", "template.yaml")


@dataclass(frozen=True)
class GuidedSettings:
    template_file: Path
    stack_name: str
    region: str
    bucket: str
    overrides: dict[str, str]
    capabilities: tuple[str, ...]


def ask_deploy_settings(
    template_file: Path | None,
    stack_name: str | None,
    region: str | None,
    overrides: Mapping[str, str],
    capabilities: tuple[str, ...],
    cwd: Path,
) -> GuidedSettings | None:
    """The settings, asked; None when the user declines to deploy."""
    template_file = template_file or _default_template(cwd)
    click.echo(f"Guided deploy of {template_file} (press Enter to keep the value in brackets).")
    template = read_template(template_file)
    config = _config_tables(cwd)
    stack_name = click.prompt("Stack name", default=stack_name or DEFAULT_STACK)
    region = click.prompt(
        "AWS region",
        default=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    declared = template.get("Parameters") or {}
    bucket_guess = overrides.get("BucketName") or str((declared.get("BucketName") or {}).get("Default", ""))
    bucket = click.prompt(
        "S3 bucket for the code packages (`package --s3-bucket`)",
        default=str(config.get("package", {}).get("s3-bucket") or bucket_guess or "my-bucket"),
    )
    values: dict[str, str] = {}
    for name, definition in declared.items():
        default = overrides.get(name)
        if default is None:
            default = bucket if name == "BucketName" else str((definition or {}).get("Default", ""))
        values[name] = click.prompt(f"Parameter {name}", default=default, show_default=True)
    needed = _capabilities(template, region, str(template_file))
    all_capabilities = tuple(dict.fromkeys([*capabilities, *needed]))
    click.echo(
        f"Capabilities: {', '.join(all_capabilities) or 'none'}"
        + (" (the template creates IAM resources)" if needed else "")
    )
    summary = ", ".join(f"{k}={v}" for k, v in values.items()) or "no parameters"
    if not click.confirm(f"Deploy {template_file} to stack {stack_name} in {region} ({summary})?", default=True):
        click.echo("Not deployed.")
        return None
    settings = GuidedSettings(template_file, stack_name, region, bucket, values, all_capabilities)
    if click.confirm(f"Save these settings to {CONFIG_NAME}?", default=True):
        path = save_settings(cwd, settings)
        click.echo(f"Saved to {path}: next time `lambdavision deploy` (and `package`) need no flags.")
    return settings


def save_settings(cwd: Path, settings: GuidedSettings) -> Path:
    """Merge the settings into the folder's lambdavision.toml (created if missing)."""
    found = find_config(cwd, os.environ)
    path = found[0] if found is not None and found[0].name == CONFIG_NAME else cwd / CONFIG_NAME
    updates: dict[str, dict[str, Any]] = {
        "deploy": {
            "template-file": str(settings.template_file),
            "stack-name": settings.stack_name,
            "region": settings.region,
            "capabilities": list(settings.capabilities),
            "parameter-overrides": dict(settings.overrides),
        },
        "package": {"s3-bucket": settings.bucket, "region": settings.region},
    }
    write_config(path, updates, base=found[1] if found is not None else {})
    return path


def _default_template(cwd: Path) -> Path:
    for name in DEFAULT_TEMPLATES:
        if (cwd / name).is_file():
            return Path(name)
    raise click.UsageError("no packaged.yaml or template.yaml here: pass --template-file")


def _config_tables(cwd: Path) -> dict[str, Any]:
    found = find_config(cwd, os.environ)
    return dict(found[1]) if found is not None else {}


def _capabilities(template: Mapping[str, Any], region: str, source: str) -> list[str]:
    """What CloudFormation will ask for: CAPABILITY_NAMED_IAM for named IAM resources, else CAPABILITY_IAM."""
    plain = plain_template(template, region=region, source=source)
    iam = [r for r in (plain.get("Resources") or {}).values() if str(r.get("Type", "")).startswith("AWS::IAM::")]
    names = ("RoleName", "UserName", "GroupName", "ManagedPolicyName", "InstanceProfileName")
    if any(name in (r.get("Properties") or {}) for r in iam for name in names):
        return ["CAPABILITY_NAMED_IAM"]
    return ["CAPABILITY_IAM"] if iam else []


__all__ = ["GuidedSettings", "ask_deploy_settings", "save_settings"]
