"""The score of `make mutate` and its survivors, each with its diff, or with why it was accepted.

mutmut keeps every mutant's result in mutants/**/*.meta; this reads those of the selection `make
mutate` ran (the security-bearing functions, SELECTION below), prints the score, the accepted
survivors by reason (benchmarks/results/mutation-accepted.txt: one line per mutant name) and,
in full, every other survivor: each one is a test still to write, or a survivor to accept there.

    python scripts/mutation_report.py            # after `mutmut run ...` (make mutate does both)
    python scripts/mutation_report.py --globs    # the selection, as mutmut's arguments
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACCEPTED = REPO / "benchmarks" / "results" / "mutation-accepted.txt"

# What is mutated: the URL policy, tar safety and the artifact's checks, the manifest, the event
# parsers and the image caps. (Writers, builders and pixel arithmetic are tested otherwise.)
SELECTION = [
    "lambdavision.core.urlpolicy.*",
    "lambdavision.core.tarstream.*",
    "lambdavision.core.manifest.*",
    # The artifact reader (issue 19 split core/artifact.py): the tar scan whole, the manifest checks.
    "lambdavision.core.artifact_scan.*",
    *(
        f"lambdavision.core.artifact_assemble.x_{name}__mutmut_*"
        for name in ("needed", "verify", "verify_digest", "verify_read_so_far", "assemble_full")
    ),
    "lambdavision.core.artifact.x_decode_classes__mutmut_*",
    *(
        f"lambdavision.core.events.{name}__mutmut_*"
        for name in (
            "x__lower_headers",
            "x__str_map",
            "x__decode_body",
            "x_infer_source",
            "x_parse_event",
            "x_error_response",
            "xǁRestApiV1ǁinfer",
            "xǁRestApiV1ǁparse",
            "xǁHttpApiV2ǁinfer",
            "xǁHttpApiV2ǁparse",
            "xǁFunctionUrlǁinfer",
            "xǁDirectInvokeǁinfer",
            "xǁDirectInvokeǁparse",
        )
    ),
    *(
        f"lambdavision.core.decode.{name}__mutmut_*"
        for name in (
            "x_sniff_format",
            "xǁMemoryBudgetǁcharge",
            "x_check_shape",
            "x_decode",
            "x_plan_decode",
            "x__jpeg_cost",
            "x__first_scan_components",
            "x_webp_open_cost",
            "x_webp_canvas_size",
            "x__pixel_bytes",
        )
    ),
]
KILLED = {1, 3, 36, -24, 24, 152, 255, 37}  # a failing test, pytest's internal error, a timeout, mypy


def results() -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for meta in (REPO / "mutants" / "src").rglob("*.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if any(fnmatch.fnmatch(name, pattern) for pattern in SELECTION):
                out[name] = code
    return out


def accepted() -> dict[str, str]:
    """mutant name -> why it is accepted, from benchmarks/results/mutation-accepted.txt."""
    reasons: dict[str, str] = {}
    for line in ACCEPTED.read_text().splitlines() if ACCEPTED.exists() else []:
        if line.strip() and not line.startswith("#"):
            name, _, why = line.partition(" ")
            reasons[name] = why.strip()
    return reasons


def main(argv: list[str]) -> int:
    if argv == ["--globs"]:
        print(" ".join(SELECTION))
        return 0
    found = results()
    if not found:
        print("no results: run `make mutate`", file=sys.stderr)
        return 1
    killed = sorted(n for n, c in found.items() if c in KILLED)
    survived = sorted(n for n, c in found.items() if c == 0)
    unchecked = sorted(n for n, c in found.items() if c not in KILLED and c != 0)
    reasons = accepted()
    open_ = [n for n in survived if n not in reasons]
    checked = len(killed) + len(survived)
    print(f"mutants: {len(found)}; killed {len(killed)}, survived {len(survived)}, other {len(unchecked)}")
    settled = (len(killed) + len(survived) - len(open_)) / checked
    print(f"score: {len(killed) / checked:.1%} of the mutants run killed; {settled:.1%} killed or accepted")
    by_reason = Counter(reasons[n].split(":")[0] for n in survived if n in reasons)
    for reason, count in by_reason.most_common():
        print(f"  accepted, {count:4d}: {reason}")
    for name in unchecked:
        print(f"  not run ({found[name]}): {name}")
    for name in open_:
        diff = subprocess.run(
            [str(Path(sys.executable).with_name("mutmut")), "show", name], capture_output=True, text=True, cwd=REPO
        ).stdout
        changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        print(f"SURVIVED {name}\n    " + "\n    ".join(changed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
