"""What each command line of README.md must have done, for tests/functional/test_readme.py.

A `Reader` types the README's lines into a `Terminal` one by one and, after each, runs the check
named after the line's command (`STEPS`): a line without a check fails the test, so a command added
to the README needs a word here on what it should do. A line that runs until Ctrl-C (`local
start-api`, `logs --tail`) is started as in a second terminal and stopped with Ctrl-C when the next
line that does not use it comes (`curl` uses start-api).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tarfile
import time
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import psutil

from lambdavision.cfn import parse_template
from tests.fixtures.guide_app import GUIDE_APP
from tests.fixtures.readme import words
from tests.fixtures.terminal import Background, Done, Terminal

BIN = Path(sys.executable).parent
KEY = "fastai-models/lesson1/model.tar.gz"  # as the README's upload line writes it
STACK = "pytorch-sam-app"
CLIENTS_OF = {"start-api": ("curl",)}  # lines that run while a background command is up


@dataclass
class Reader:
    """One reader of the README: a terminal, the placeholders' values, what earlier lines left behind."""

    terminal: Terminal
    work: Path  # where each block starts
    path: str  # "init" (the guide's block) or "from-sam" (from the guide's own folder)
    bucket: str
    image_url: str
    image_class: str  # what the demo model answers for IMAGE_URL
    photo_class: str  # ... and for photo.jpg
    port: int | None = None  # start-api's
    request_id: str = ""
    request_lines: list[str] = field(default_factory=list)  # what the function wrote for the curl request
    environments: list[psutil.Process] = field(default_factory=list)  # start-api's
    background: dict[str, Background] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    def substitute(self, line: str) -> str:
        line = re.sub(r"\bBUCKET\b", self.bucket, line).replace("IMAGE_URL", self.image_url)
        if "localhost:3000" in line:
            assert self.port is not None, "a line calls localhost:3000 before start-api runs"
            line = line.replace("localhost:3000", f"localhost:{self.port}")
        return line

    def run(self, blocks: list[tuple[str, ...]]) -> None:
        """Each block in a new terminal (in the working folder), its lines in order."""
        for block in blocks:
            self.terminal.cwd = self.work
            for line in block:
                self.type(line)
        for name in list(self.background):
            self.stop(name)

    def type(self, readme_line: str) -> None:
        said = words(readme_line)
        name = step_name(said)
        assert name in STEPS, f"README line `{readme_line}`: no check says what `{name}` should do"
        for running in list(self.background):
            if name not in CLIENTS_OF.get(running, ()):
                self.stop(running)
        step, line = STEPS[name], self.substitute(readme_line)
        self.ran.append(name)
        if step.before is not None:
            step.before(self)
        if step.started is not None and (name == "start-api" or "--tail" in said):
            self.background[name] = started = self.terminal.start(line)
            step.started(self, started)
            return
        done = self.terminal.run(line) if name != "curl" or shutil.which("curl") else curl_with_urllib(line)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.describe()
        step.check(self, done)

    def stop(self, name: str) -> None:
        """Ctrl-C, then the step's check on all it printed."""
        done = self.background.pop(name).interrupt()
        assert done.returncode == 0 and "Traceback" not in done.stdout, done.describe()
        STEPS[name].check(self, done)


def step_name(said: list[str]) -> str:
    """The step a README line is: its command, e.g. `invoke`, `aws s3 mb`, `curl`."""
    if said[0] == "lambdavision":
        name = said[1] if said[1] != "local" else said[2]
        return "init --from-sam" if name == "init" and "--from-sam" in said else name
    return f"aws {said[1]} {said[2]}" if said[0] == "aws" else said[0]


@dataclass(frozen=True)
class Step:
    check: Callable[[Reader, Done], None]  # on what the line printed, once it ended (or was stopped)
    before: Callable[[Reader], None] | None = None  # what has to be so before it runs (BY_HAND)
    started: Callable[[Reader, Background], None] | None = None  # a line that runs until Ctrl-C: up?


def made_bucket(reader: Reader, done: Done) -> None:
    boto3.client("s3").head_bucket(Bucket=reader.bucket)


def exported(reader: Reader, done: Done) -> None:
    with tarfile.open(reader.terminal.cwd / "model.tar.gz") as tar:
        names = tar.getnames()
        classes = tar.extractfile("classes.txt")
        assert classes is not None and classes.read() == (reader.terminal.cwd / "classes.txt").read_bytes()
    # the .pth stays out unless --keep-torchscript: the function serves the ONNX graph only
    assert names == ["lambdavision.json", "classes.txt", "model.onnx", "model.onnx.data"]


def uploaded(reader: Reader, done: Done) -> None:
    size = (reader.terminal.cwd / "model.tar.gz").stat().st_size
    assert boto3.client("s3").head_object(Bucket=reader.bucket, Key=KEY)["ContentLength"] == size


def initialised(reader: Reader, done: Done) -> None:
    app = reader.terminal.cwd
    assert app == reader.work / "app"
    env = {"PyTorchFunction": {"MODEL_BUCKET": reader.bucket, "MODEL_KEY": KEY}}
    assert json.loads((app / "env.json").read_text()) == env
    assert json.loads(json.loads((app / "event.json").read_text())["body"]) == {"url": reader.image_url}


def converted_the_guides_folder(reader: Reader, done: Done) -> None:
    app = reader.terminal.cwd
    assert app == reader.work / "app"
    for change in (
        "PyTorchFunction Runtime python3.6 -> python3.12 (python3.6 is retired)",
        "PyTorchFunction Layers removed (arn:aws:lambda:us-east-1:934676248949:layer:pytorchv1-py36:2)",
        "pytorch/app.py -> pytorch/app_original.py",
        "parameter LambdaLayerArn removed",
        f"parameter BucketName Default 'somebucket' -> '{reader.bucket}'",
        f"parameter ObjectKey Default 'somekey' -> '{KEY}'",
        "env.json: written",
        "Next: point the URL in app/event.json at an image (as the guide says)",
    ):
        assert change in done.stdout, done.describe()
    assert (app / "pytorch" / "app_original.py").read_bytes() == (GUIDE_APP / "pytorch" / "app.py").read_bytes()
    assert "from lambdavision.handler import lambda_handler" in (app / "pytorch" / "app.py").read_text()
    assert (app / "event.json").read_bytes() == (GUIDE_APP / "event.json").read_bytes()
    template = parse_template((app / "template.yaml").read_text())
    guide = parse_template((GUIDE_APP / "template.yaml").read_text())
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Outputs"] == guide["Outputs"]
    assert set(template["Resources"]) == set(guide["Resources"]) == {"PyTorchFunction"}
    assert set(template["Parameters"]) == {"BucketName", "ObjectKey"}
    function = template["Resources"]["PyTorchFunction"]["Properties"]
    assert function["Runtime"] == "python3.12" and "Layers" not in function
    env = {"PyTorchFunction": {"MODEL_BUCKET": reader.bucket, "MODEL_KEY": KEY}}
    assert json.loads((app / "env.json").read_text()) == env


def point_event_json_at_the_image(reader: Reader) -> None:
    """From the guide's folder, by hand as the guide says: the URL in its event.json becomes IMAGE_URL
    (`init --image-url IMAGE_URL` wrote it on the other path)."""
    if reader.path == "from-sam":
        path = reader.terminal.cwd / "event.json"
        event = json.loads(path.read_text())
        event["body"] = json.dumps({"url": reader.image_url})
        path.write_text(json.dumps(event))


def built(reader: Reader, done: Done) -> None:
    build = reader.terminal.cwd / ".lambdavision" / "build"
    record = json.loads((build / "build.json").read_text())
    assert (build / "PyTorchFunction.zip").is_file(), record


def invoked(reader: Reader, done: Done) -> None:
    answer = json.loads(done.stdout)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["class"] == reader.image_class  # a decoded class name, not b'...'
    zipped = reader.terminal.cwd / ".lambdavision" / "build" / "PyTorchFunction.zip"
    assert f"PyTorchFunction: running the built package {zipped}" in done.stderr, done.describe()
    assert "on CPython 3.12." in done.stderr and "-I -S" in done.stderr, done.describe()
    assert "REPORT RequestId:" in done.stderr and "Init Duration" in done.stderr, done.describe()


def api_up(reader: Reader, server: Background) -> None:
    output = server.wait_for(lambda text: "Running on" in text, "`Running on` line")
    found = re.search(r"Running on http://127\.0\.0\.1:(\d+)/", output)
    assert found, output
    reader.port = int(found[1])


def curled(reader: Reader, done: Done) -> None:
    assert json.loads(done.stdout)["class"] == reader.image_class, done.describe()
    server = reader.background["start-api"]
    output = server.wait_for(lambda text: "REPORT RequestId" in text, "REPORT line")
    assert "PyTorchFunction: running the built package" in output  # said as the first environment started
    reader.request_id = rid = re.findall(r"START RequestId: (\S+)", output)[-1]
    lines = output.splitlines()
    first = next(i for i, entry in enumerate(lines) if entry.startswith(f"START RequestId: {rid}"))
    last = next(i for i, entry in enumerate(lines) if entry.startswith(f"REPORT RequestId: {rid}"))
    # What Lambda writes for the request: the function's own lines, without start-api's request-id prefix.
    reader.request_lines = [entry.removeprefix(f"{rid} ") for entry in lines[first : last + 1]]
    assert any(f'"class":"{reader.image_class}"' in entry for entry in reader.request_lines), output
    run_dir = str(reader.terminal.cwd / ".lambdavision" / "build" / "run")
    reader.environments = psutil.Process(server.process.pid).children(recursive=True)
    assert reader.environments  # awslambdaric, kept warm
    for child in reader.environments:  # the runtime's CPython, isolated, running the extracted package
        command = child.cmdline()
        assert command[1:3] == ["-I", "-S"] and command[3].endswith("bootstrap.py"), command
        assert "3.12" in command[0] and child.cwd().startswith(run_dir), command


def api_stopped(reader: Reader, done: Done) -> None:
    assert "Stopped: every environment is shut down." in done.stdout, done.describe()
    left = [p for p in reader.environments if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert reader.environments and not left


def packaged(reader: Reader, done: Done) -> None:
    app = reader.terminal.cwd
    template = parse_template((app / "packaged.yaml").read_text())
    assert "Transform" not in template
    function = template["Resources"]["PyTorchFunction"]
    assert function["Type"] == "AWS::Lambda::Function" and function["Properties"]["Code"]["S3Bucket"] == reader.bucket
    uploaded = boto3.client("s3").get_object(Bucket=reader.bucket, Key=function["Properties"]["Code"]["S3Key"])
    built_zip = (app / ".lambdavision" / "build" / "PyTorchFunction.zip").read_bytes()
    assert hashlib.sha256(uploaded["Body"].read()).digest() == hashlib.sha256(built_zip).digest()  # what local ran
    if reader.path == "from-sam":  # AWS's transform made it plain CloudFormation: cfn-lint agrees
        lint = reader.terminal.run(f"{BIN / 'cfn-lint'} packaged.yaml")
        assert lint.returncode == 0, lint.describe()


def deployed(reader: Reader, done: Done) -> None:
    assert f"Stack {STACK}: CREATE_COMPLETE" in done.stderr, done.describe()
    config = boto3.client("lambda").get_function_configuration(FunctionName=function_name())
    memory = 3008 if reader.path == "from-sam" else 2048  # the guide's template, or init's default
    assert (config["Runtime"], config["Handler"], config["MemorySize"]) == ("python3.12", "app.lambda_handler", memory)
    assert config["Environment"]["Variables"] == {"MODEL_BUCKET": reader.bucket, "MODEL_KEY": KEY}


def described(reader: Reader, done: Done) -> None:
    url = api_url()
    found = re.fullmatch(r"https://(\w+)\.execute-api\.us-east-1\.amazonaws\.com/Prod/invocations/", url)
    assert found and found[1] in {api["id"] for api in boto3.client("apigateway").get_rest_apis()["items"]}
    assert url in done.stdout and "PyTorchApi" in done.stdout
    assert "PyTorchFunctionIamRole" not in done.stdout  # the query picked one output


def endpoint(reader: Reader, done: Done) -> None:
    assert done.stdout == api_url() + "\n"


def put_the_requests_logs(reader: Reader) -> None:
    """moto runs no function (BY_HAND): what it wrote for the curl request goes into its log group."""
    group, stream = f"/aws/lambda/{function_name()}", "2026/11/26/[$LATEST]readme"
    logs = boto3.client("logs")
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)  # the guide's template declares none: Lambda makes it
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": entry} for i, entry in enumerate(reader.request_lines)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)  # type: ignore[arg-type]


def tailing(reader: Reader, tail: Background) -> None:
    tail.wait_for(lambda text: f"REPORT RequestId: {reader.request_id}" in text, "the request's REPORT line")


def logs_printed(reader: Reader, done: Done) -> None:
    printed = [entry.split(" ", 2)[2] for entry in done.stdout.splitlines()]
    rid = reader.request_id
    assert printed[0].startswith(f"START RequestId: {rid}") and printed[-1].startswith(f"REPORT RequestId: {rid}")
    # The request's JSON log line as one readable line; its metrics record (EMF) adds nothing and is left out.
    answer = re.compile(rf"{rid} 200 {reader.image_class} \d+\.\d% [\d.]+ ms cold")
    assert len([entry for entry in printed if answer.fullmatch(entry)]) == 1, printed
    assert not [entry for entry in printed if "_aws" in entry], printed
    assert len(printed) == len(reader.request_lines) - 1, printed


def deleted(reader: Reader, done: Done) -> None:
    assert f"Deleted stack {STACK}." in done.stderr
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []


def predicted(reader: Reader, done: Done) -> None:
    assert json.loads(done.stdout)["class"] == reader.photo_class


def benched(reader: Reader, done: Done) -> None:
    assert "model.tar.gz on photo.jpg (320x240)" in done.stdout, done.describe()
    memory_sizes = re.findall(r"--memory ((?:\d+ ?)+)", done.line)[0].split()
    for memory in memory_sizes:  # one row each: model, CPU share, cold start (min-max, wrapped if narrow), p50...
        row = re.search(rf"│\s+{memory} MB \(\d\) │\s+bundled │[^│]+│\s+(\d+) │\s+(\d+) │", done.stdout)
        assert row and int(row[1]) > 0 and int(row[2]) > 0, done.stdout
    assert len(re.findall(r"\(\d+-\d+\)", done.stdout)) == len(memory_sizes), done.stdout


def curl_with_urllib(line: str) -> Done:
    """The curl line through urllib, where curl is not installed (-d, -H and -X, as the README uses them)."""
    warnings.warn("curl is not installed: the README's curl line ran through urllib", stacklevel=2)
    said = words(line)
    options = dict(zip(said[1:-1:2], said[2::2], strict=True))
    name, _, value = options["-H"].partition(":")
    request = urllib.request.Request(
        said[-1], data=options["-d"].encode(), headers={name: value.strip()}, method=options["-X"]
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return Done(line, 0, answer.read().decode(), "")


def function_name() -> str:
    cfn = boto3.client("cloudformation")
    resource = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId="PyTorchFunction")
    return str(resource["StackResourceDetail"]["PhysicalResourceId"])


def api_url() -> str:
    (stack,) = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    return next(str(o["OutputValue"]) for o in stack["Outputs"] if o["OutputKey"] == "PyTorchApi")


STEPS = {
    "aws s3 mb": Step(made_bucket),
    "export": Step(exported),
    "upload": Step(uploaded),
    "init": Step(initialised),
    "init --from-sam": Step(converted_the_guides_folder),
    "build": Step(built),
    "invoke": Step(invoked, before=point_event_json_at_the_image),
    "start-api": Step(api_stopped, started=api_up),
    "curl": Step(curled),
    "package": Step(packaged),
    "deploy": Step(deployed),
    "aws cloudformation describe-stacks": Step(described),
    "endpoint": Step(endpoint),
    "logs": Step(logs_printed, before=put_the_requests_logs, started=tailing),
    "delete": Step(deleted),
    "predict": Step(predicted),
    "bench": Step(benched),
}
