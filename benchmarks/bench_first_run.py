"""The first run after `pip install .`: the first `eau2.read_sor` in a new process, and
`eau2 run demo`, right after the install (cold) and again (warm).

Makes a virtual environment in a temporary folder and installs a copy of this repository
into it as a user would (`pip install <repo>`; pip's cache makes the dependencies quick;
the copy keeps pip's build files out of the repository), and times building eau2's wheel
(what `pip install .` builds: with the SoR kernel compiled, see setup.py). Each round then
installs that wheel afresh (its package folders removed first, so nothing numba compiled
after an install is left) with an empty user cache folder (XDG_CACHE_HOME, so no cache
outside the install either), and times, each in a new process started in an empty folder:

1. the first `eau2.read_sor` of a small generated SoR file (1,000 mixed-type rows, 40 kB),
   then of a larger one (50,000 rows, 2 MB: enough that the kernel's compiled code is used); cold,
   then --warm more times;
2. `eau2 run demo`, end to end (the command's wall time), on a fresh install again: cold,
   then --warm more times.

Prints medians (cold: over --rounds rounds; warm: over all warm runs) beside the goals of
issue 9: the first read of a small file at most 5 s, the demo at most 6 s; the ratio is
the time over the goal (at most 1 meets it). A read is the `read_sor` call; the import of
eau2 before it and the whole process are shown beside it.

    python benchmarks/bench_first_run.py [--rounds 1] [--warm 3] [--venv DIR]

With --venv DIR, the environment is made there (or reused, if it is one) and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READ_GOAL, DEMO_GOAL = 5.0, 6.0
SMALL_ROWS, LARGE_ROWS = 1_000, 50_000
REPO = Path(__file__).resolve().parent.parent

READ_SCRIPT = """
import json, sys, time
started = time.perf_counter()
import eau2
imported = time.perf_counter()
frame = eau2.read_sor(sys.argv[1])
read = time.perf_counter()
assert frame.nrows == int(sys.argv[2]) and str(frame.schema) == "BIFSI", (frame.nrows, frame.schema)
print(json.dumps({"import": imported - started, "read": read - imported}))
"""


def write_sor(path: Path, rows: int) -> None:
    """Mixed-type SoR rows: a bool, an int, a float, a quoted string, an int often missing."""
    lines = []
    for row in range(rows):
        fields = [
            str(row % 2),
            str((row * 7919) % 2_000_001 - 1_000_000),
            f"{(row * 104729) % 200_000 / 100 - 1000:.2f}",
            f'"user{row % 997}"',
            "" if row % 7 == 0 else str(row),
        ]
        lines.append(" ".join(f"<{field}>" for field in fields))
    path.write_text("\n".join(lines) + "\n")


class Environment:
    """A virtual environment with this repository's dependencies, into which eau2 itself is
    installed afresh for each cold run."""

    def __init__(self, folder: Path, repo: Path, work: Path):
        self.folder = folder
        self.python = folder / "bin" / "python"
        if not self.python.exists():
            run([sys.executable, "-m", "venv", str(folder)])
        source = work / "source"
        ignored = shutil.ignore_patterns(".*", "build", "dist", "site", "*.egg-info", "__pycache__")
        shutil.copytree(repo, source, ignore=ignored)
        self.pip("install", "--quiet", str(source))  # the dependencies, once
        wheels = work / "wheel"
        started = time.perf_counter()
        self.pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(source))
        self.wheel = next(wheels.glob("eau2-*.whl"))
        self.build_seconds = time.perf_counter() - started
        purelib = run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        self.site_packages = Path(purelib.stdout.strip())

    def pip(self, *args: str) -> None:
        run([str(self.python), "-m", "pip", *args, "--disable-pip-version-check"])

    def reinstall(self) -> None:
        """eau2 as `pip install` leaves it: its folders removed first, with whatever numba
        cached in them (pip's uninstall would leave those files behind)."""
        self.pip("uninstall", "--quiet", "--yes", "eau2")
        for package in ("eau2", "eau2_dask"):
            shutil.rmtree(self.site_packages / package, ignore_errors=True)
        self.pip("install", "--quiet", "--no-deps", str(self.wheel))

    def env(self, cache: Path) -> dict:
        """The environment of a user who has just activated the venv, with an empty user cache."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("NUMBA_", "PYTHON", "DASK_")) and key != "VIRTUAL_ENV"
        }
        env["PATH"] = f"{self.folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.folder)
        env["XDG_CACHE_HOME"] = str(cache)
        return env


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def time_read(environment: Environment, env: dict, path: Path, rows: int, cwd: Path) -> dict:
    started = time.perf_counter()
    result = run([str(environment.python), "-c", READ_SCRIPT, str(path), str(rows)], env=env, cwd=cwd)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["process"] = time.perf_counter() - started
    return figures


def time_demo(environment: Environment, env: dict, cwd: Path) -> float:
    started = time.perf_counter()
    result = run([str(environment.folder / "bin" / "eau2"), "run", "demo", "--json"], env=env, cwd=cwd)
    elapsed = time.perf_counter() - started
    assert json.loads(result.stdout.splitlines()[-1]) == {"sum": 4999950000, "result": "SUCCESS"}
    return elapsed


def one_round(environment: Environment, work: Path, files: dict, warm: int) -> dict:
    """Each measure's times in this round, the cold one first."""
    times: dict[str, list] = {"small": [], "large": [], "demo": []}
    for kind in ("read", "demo"):
        environment.reinstall()
        cache = work / "cache"
        env = environment.env(cache)
        for run_number in range(1 + warm):
            state = "cold" if run_number == 0 else "warm"
            if kind == "read":
                for size, (path, rows) in files.items():
                    times[size].append(time_read(environment, env, path, rows, work))
                    read = times[size][-1]
                    print(f"  {state} read, {size}: {read['read']:.2f} s (import {read['import']:.2f} s)")
            else:
                times["demo"].append(time_demo(environment, env, work))
                print(f"  {state} demo: {times['demo'][-1]:.2f} s", flush=True)
        shutil.rmtree(cache, ignore_errors=True)
    return times


def show(label: str, seconds: float, goal: float | None = None) -> None:
    line = f"  {label:48s} {seconds:6.2f} s"
    if goal is not None:
        line += f"   goal <= {goal:.0f} s, ratio {seconds / goal:4.2f}"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="cold runs of each (default 1)")
    parser.add_argument("--warm", type=int, default=3, help="warm runs after each cold one (default 3)")
    parser.add_argument("--venv", type=Path, default=None, help="make (or reuse) and keep the venv here")
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eau2-first-run-"))
    try:
        started = time.perf_counter()
        environment = Environment(args.venv or work / "venv", args.repo, work)
        print(f"venv and dependencies ready in {time.perf_counter() - started:.0f} s ({environment.folder})")
        files = {"small": (work / "small.sor", SMALL_ROWS), "large": (work / "large.sor", LARGE_ROWS)}
        for path, rows in files.values():
            write_sor(path, rows)
        sizes = {name: path.stat().st_size for name, (path, _) in files.items()}
        rounds = [one_round(environment, work, files, args.warm) for _ in range(args.rounds)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median(measure: str, cold: bool, field: str | None = None) -> float:
        runs = [r[measure][0] for r in rounds] if cold else [x for r in rounds for x in r[measure][1:]]
        return statistics.median(run[field] if field else run for run in runs)

    show("building eau2's wheel (kernel compile included)", environment.build_seconds)
    print(f"{args.rounds} cold round(s) on a fresh install, {args.warm} warm run(s) after each; medians")
    for size, rows in (("small", SMALL_ROWS), ("large", LARGE_ROWS)):
        print(
            f"first eau2.read_sor in a new process, {size} file: {sizes[size] / 1e3:,.0f} kB, {rows:,} rows"
        )
        for state in ("cold", "warm")[: 1 + (args.warm > 0)]:
            goal = READ_GOAL
            show(f"{state}: read_sor", median(size, state == "cold", "read"), goal)
            show(f"{state}: import eau2 before it", median(size, state == "cold", "import"))
            show(f"{state}: the whole process", median(size, state == "cold", "process"))
    print("eau2 run demo, end to end (3 nodes)")
    for state in ("cold", "warm")[: 1 + (args.warm > 0)]:
        show(state, median("demo", state == "cold"), DEMO_GOAL)


if __name__ == "__main__":
    main()
