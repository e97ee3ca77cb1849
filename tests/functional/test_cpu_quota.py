"""Lambda's CPU share, emulated: each environment in a cgroup holding it to MemorySize/1769 vCPUs.

The measured property: a busy function (and the busy child processes it starts) gets its share of
CPU time over a wall-clock window, within 10 %, from getrusage inside the function. The rest is
what the share looks like from outside: the REPORT line, the cgroup files, the one warning and the
fallback where cgroups cannot be written, and no group left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lambdavision.local import cpu_quota
from lambdavision.local.cpu_quota import CpuLimiter, find_hierarchy, share_for
from lambdavision.local.pool import Invocation
from lambdavision.local.template import FunctionSpec
from tests.fixtures.pools import PoolFactory

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 1.5  # 15 CFS periods of 100 ms: the share averages out well within 10 %


def _hierarchy() -> Any:
    return find_hierarchy(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())


def _writable() -> bool:
    hierarchy = _hierarchy()
    if hierarchy is None:
        return False
    probe = hierarchy.base / f"lambdavision-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


needs_cgroups = pytest.mark.skipif(not _writable(), reason="cgroups are not writable here (needs root)")


def busy(memory_mb: int) -> FunctionSpec:
    return FunctionSpec(
        logical_id="BusyFunction",
        handler="app.lambda_handler",
        code_dir=FUNCTIONS / "busy",
        runtime="python3.12",
        memory_mb=memory_mb,
        timeout_s=30,
        environment={},
    )


def answer(invocation: Invocation) -> Any:
    assert invocation.ok, invocation.payload
    return json.loads(invocation.payload)


def group_of(proc_cgroup: str) -> Path:
    """The folder of the `cpu` group a /proc/PID/cgroup text names (this machine's v1 hierarchy)."""
    line = next(line for line in proc_cgroup.splitlines() if ":cpu:" in line or ":cpu," in line)
    mount = next(
        fields[4] for fields in (line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines())
        if "cgroup" in fields and "cpu" in fields[-1].split(",")
    )  # fmt: skip
    return Path(mount) / line.split(":", 2)[2].lstrip("/")


def own_groups() -> list[Path]:
    hierarchy = _hierarchy()
    return sorted(hierarchy.base.glob(f"lambdavision-{os.getpid()}-*")) if hierarchy else []


@needs_cgroups
# Shares well under what a busy process gets on a loaded 2-core machine (a third of a core each at a
# load of 6), so the quota, not the other load, is what holds it: 0.22 vCPU alone, 0.43 for two processes.
@pytest.mark.parametrize(("memory_mb", "processes"), [(384, 1), (768, 2)])
def test_a_busy_function_gets_its_share(make_pool: PoolFactory, memory_mb: int, processes: int) -> None:
    limiter = CpuLimiter()
    try:
        pool, logs = make_pool(busy(memory_mb), cpu_limiter=limiter)
        result = answer(pool.invoke({"seconds": WINDOW_S, "processes": processes}))
        share = memory_mb / 1769
        # Together, however many processes: the quota holds the group, not each process.
        assert result["cpu_s"] / result["wall_s"] == pytest.approx(share, rel=0.10)
        assert f"/lambdavision-{os.getpid()}-" in result["cgroup"]
        report = next(line for line in logs.lines() if line.startswith("REPORT "))
        assert report.endswith(f"\tCPU Share: {share:.2f} vCPU")
        assert int((group_of(result["cgroup"]) / "cpu.cfs_quota_us").read_text()) == round(share * 100_000)
        pool.close()
        assert not any((g / "env-1").exists() for g in own_groups())  # each environment's group went with it
    finally:
        limiter.close()
    assert own_groups() == []


@needs_cgroups
def test_turned_off_the_function_runs_on_whole_cores(make_pool: PoolFactory) -> None:
    limiter = CpuLimiter(enabled=False)
    pool, logs = make_pool(busy(512), cpu_limiter=limiter)
    result = answer(pool.invoke({"seconds": 0.2}))
    assert "lambdavision-" not in result["cgroup"]
    report = next(line for line in logs.lines() if line.startswith("REPORT "))
    assert report.endswith("\tCPU Share: unlimited (--no-cpu-share)")
    assert own_groups() == []


def test_unwritable_cgroups_warn_once_and_fall_back(make_pool: PoolFactory, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    warnings: list[str] = []
    hierarchy = cpu_quota._Hierarchy(1, not_a_folder)
    limiter = CpuLimiter(hierarchy=hierarchy, warn=warnings.append)
    pool, _ = make_pool(busy(1024), cpu_limiter=limiter, concurrency=2)
    pool.start(warm=True)  # two environments, one warning
    first = pool.invoke({"seconds": 0.1})
    assert answer(first)["cpu_s"] > 0
    assert len(warnings) == 1
    assert "cannot hold environments to Lambda's CPU share" in warnings[0] and "--no-cpu-share" in warnings[0]
    assert first.report_line.endswith("\tCPU Share: unlimited (cgroups not writable)")
    limiter.close()


@needs_cgroups
def test_local_invoke_holds_the_function_to_its_share_by_default(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Busy:\n    Type: AWS::Serverless::Function\n"
        f"    Properties: {{CodeUri: {FUNCTIONS / 'busy'}, Runtime: python3.12, Handler: app.lambda_handler,"
        " MemorySize: 1024, Timeout: 30}\n"
    )
    (tmp_path / "event.json").write_text(json.dumps({"seconds": 0.1}))
    env = {k: v for k, v in os.environ.items() if k != "LAMBDAVISION_CPU_SHARE"}
    command = [sys.executable, "-c", "import sys; from lambdavision.cli import main; sys.exit(main())"]
    command += ["local", "invoke", "-e", "event.json"]
    on, off = (
        subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        for words in (command, [*command, "--no-cpu-share"])
    )
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert "\tCPU Share: 0.58 vCPU" in on.stderr and "lambdavision-" in json.loads(on.stdout)["cgroup"]
    assert "\tCPU Share: unlimited (--no-cpu-share)" in off.stderr


# --- pure parts ---


def test_the_share_is_memory_over_1769_capped_at_the_cores() -> None:
    assert share_for(1024, cores=2) == pytest.approx(0.5788, abs=1e-4)
    assert share_for(3008, cores=2) == pytest.approx(1.7004, abs=1e-4)
    assert share_for(10240, cores=2) == 2.0
    assert CpuLimiter(enabled=False).share(1024).describe() == "unlimited (--no-cpu-share)"


MOUNTINFO_V1 = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def test_v1_groups_go_under_this_process_s_own_cpu_group() -> None:
    hierarchy = find_hierarchy(MOUNTINFO_V1, "2:cpu,cpuacct:/user/42\n0::/\n")
    assert hierarchy == cpu_quota._Hierarchy(1, Path("/sys/fs/cgroup/cpu,cpuacct/user/42"))
    # In a container the mount's root is the container's own group: paths are relative to it.
    inside = MOUNTINFO_V1.replace("0:29 / /sys", "0:29 /docker/abc /sys")
    assert find_hierarchy(inside, "2:cpu,cpuacct:/docker/abc\n")
    assert find_hierarchy(inside, "2:cpu,cpuacct:/docker/abc\n").base == Path("/sys/fs/cgroup/cpu,cpuacct")  # type: ignore[union-attr]
    assert find_hierarchy("", "") is None


def test_v2_quota_is_written_to_cpu_max_with_the_controller_enabled(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory\n")
    mountinfo = f"41 31 0:38 / {tmp_path} rw,relatime - cgroup2 cgroup2 rw\n"
    hierarchy = find_hierarchy(mountinfo, "0::/user.slice\n")
    assert hierarchy == cpu_quota._Hierarchy(2, tmp_path)
    # A plain folder stands in for cgroupfs, whose kernel would create these files itself.
    limiter = CpuLimiter(hierarchy=hierarchy, cores=4)
    parent = next(tmp_path.glob(f"lambdavision-{os.getpid()}-*"))
    group = limiter.group(2048)
    assert group is not None and group.share.vcpus == 1.16
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu"
    assert (parent / "cgroup.subtree_control").read_text() == "+cpu"
    assert (group.path / "cpu.max").read_text() == f"{round(2048 / 1769 * 100_000)} 100000"


def test_groups_of_dead_lambdavision_processes_are_removed(tmp_path: Path) -> None:
    dead, alive = tmp_path / "lambdavision-999999999-1", tmp_path / f"lambdavision-{os.getpid()}-7"
    (dead / "env-3").mkdir(parents=True)
    (alive / "env-1").mkdir(parents=True)
    CpuLimiter(hierarchy=cpu_quota._Hierarchy(1, tmp_path), warn=lambda _m: None)
    assert not dead.exists() and (alive / "env-1").is_dir()
