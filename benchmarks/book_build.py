"""Benchmark: how long a reader waits for the book on a fresh clone.

    python -m benchmarks.book_build                    # HTML from the stored executed chapters
    python -m benchmarks.book_build --execute          # also a full default re-execution (FORCE)
    python -m benchmarks.book_build --from-logs A.log B.log C.log --wall-seconds N
                                                       # record a re-execution run as parallel streams

Clones the repository's committed ``HEAD`` into a temporary folder (no ``data/``, no
``_build/``, no executed chapters beyond what is committed), points it at this environment's
Python, and times, each in its own process:

1. ``python -m sepcore.book build`` on the clone as it is: the HTML book from the committed
   executed chapters (goal: at most 5 minutes). When a chapter's executed notebook is not
   committed the build cannot start, and the row says so instead of a time;
2. with ``--execute``: ``python -m sepcore.book run --profile default --force`` then the build,
   i.e. every chapter executed anew, the embedded dataset rendered on first use (goal: at most
   2 hours on 2 cores).

Writes ``tables/benchmarks/book_build`` (wall seconds, CPU seconds of the children, the goal and
whether it holds, the commit). Run it on an otherwise idle machine: the times are wall clock.

``--from-logs`` records instead a full re-execution that ran as several ``python -m sepcore.book
run --profile default --force CHAPTERS...`` processes (e.g. two streams of chapters side by side on
the 2 cores, then the collecting chapters): the chapters' own times are read from the logs'
``"<chapter>: ok in N s"`` lines, and the wall time from start to end is given (it is not
measured here). The row says so.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from sepcore.book import list_chapters, table_root
from sepcore.tables import write_table
from sepcore.utils import REPO_ROOT

GOALS_S = {"HTML from the committed executed chapters": 5 * 60, "full default re-execution and build": 2 * 3600}


def timed(command: list[str], cwd: Path, env: dict) -> tuple[int, float, float]:
    """``(exit status, wall seconds, CPU seconds of the child processes)`` of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    status = subprocess.call(command, cwd=cwd, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return status, time.time() - started, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def head_commit() -> str:
    return subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, text=True).strip()


def chapter_seconds(logs: list[str]) -> dict[str, float]:
    """``{chapter: seconds}`` from the ``"[sepcore.book] <chapter>: ok in N s"`` lines of run logs, read
    in order: a chapter re-run after a failure counts with its later run. A chapter whose last run
    failed, or that is missing, raises."""
    import re

    found, failed = {}, {}
    for log in logs:
        for line in Path(log).read_text(errors="replace").splitlines():
            hit = re.search(r"\[sepcore\.book\] (\S+): (ok|failed.*) in ([0-9.]+) s", line)
            if hit and hit.group(2) != "ok":
                failed[hit.group(1)] = f"{log}: {hit.group(1)} {hit.group(2)}"
                found.pop(hit.group(1), None)
            elif hit:
                failed.pop(hit.group(1), None)
                found[hit.group(1)] = float(hit.group(3))
    if failed:
        raise SystemExit("; ".join(failed.values()))
    missing = [c.stem for c in list_chapters() if c.stem not in found]
    if missing:
        raise SystemExit(f"the logs lack chapters {missing}")
    return found


def from_logs(logs: list[str], wall_seconds: float) -> pd.DataFrame:
    seconds = chapter_seconds(logs)
    commit = head_commit()
    name = "full default re-execution and build"
    row = {"measure": f"{name} (recorded: {len(logs)} run processes, streams in parallel on the 2 cores)",
           "status": "ok", "wall_s": wall_seconds, "cpu_s": None, "chapter_seconds_sum": sum(seconds.values()),
           "slowest": ", ".join(f"{c} {s:.0f} s" for c, s in sorted(seconds.items(), key=lambda kv: -kv[1])[:3]),
           "goal_s": GOALS_S[name]}
    row["goal_met"] = bool(wall_seconds <= row["goal_s"])
    frame = pd.DataFrame([row])
    path = table_root("default") / "benchmarks" / "book_build_reexecution"
    write_table(frame, path, profile="default", parameters={"commit": commit, "logs": logs, "cpus": os.cpu_count()},
                notes="A full default re-execution recorded from its run logs: chapter times from the logs, wall time "
                      "from the start of the first run process to the end of the last (given).")
    print(frame.to_string())
    return frame


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true", help="also time a full default re-execution")
    parser.add_argument("--from-logs", nargs="+", default=None, help="record a re-execution from its run logs")
    parser.add_argument("--wall-seconds", type=float, default=None, help="with --from-logs: its wall time")
    args = parser.parse_args(argv)
    if args.from_logs:
        if args.wall_seconds is None:
            parser.error("--from-logs needs --wall-seconds")
        return from_logs(args.from_logs, args.wall_seconds)
    commit = head_commit()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "sepcore"
        subprocess.check_call(["git", "clone", "-q", str(REPO_ROOT), str(clone)])
        env = {**os.environ, "PYTHONPATH": str(clone), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env.pop("SEPCORE_DATA", None)
        book = [sys.executable, "-m", "sepcore.book"]
        stored = [c.stem for c in list_chapters() if (clone / "book" / "executed" / f"{c.stem}.ipynb").exists()]
        name = "HTML from the committed executed chapters"
        if len(stored) < len(list_chapters()):
            rows.append({"measure": name, "status": f"not measurable: {len(stored)} of {len(list_chapters())} "
                         "executed chapters are committed", "wall_s": None, "cpu_s": None})
        else:
            status, wall, cpu = timed(book + ["build"], clone, env)
            rows.append({"measure": name, "status": "ok" if status == 0 else f"failed ({status})", "wall_s": wall,
                         "cpu_s": cpu})
        if args.execute:
            status, wall, cpu = timed(book + ["run", "--profile", "default", "--force"], clone, env)
            if status == 0:
                status, build_wall, build_cpu = timed(book + ["build"], clone, env)
                wall, cpu = wall + build_wall, cpu + build_cpu
            rows.append({"measure": "full default re-execution and build", "status": "ok" if status == 0 else
                         f"failed ({status})", "wall_s": wall, "cpu_s": cpu})
    frame = pd.DataFrame(rows)
    frame["goal_s"] = frame["measure"].map(GOALS_S)
    frame["goal_met"] = [bool(w <= g) if w is not None and s == "ok" else None
                         for w, g, s in zip(frame["wall_s"], frame["goal_s"], frame["status"])]
    write_table(frame, table_root("default") / "benchmarks" / "book_build", profile="default",
                parameters={"commit": commit, "cpus": os.cpu_count()},
                notes="Wall and child CPU seconds on a fresh clone of the commit; goals from the reader's-book issue.")
    print(frame.to_string())
    return frame


if __name__ == "__main__":
    main()
