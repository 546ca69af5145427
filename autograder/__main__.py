"""Command line: ``python -m autograder {grade,manual-list,manual-merge} ...``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from dnn_course.assignment import ASSIGNMENT

from .grading_settings import GradingSettings
from .layout import OutputLayout
from .sandbox import Limits


def _settings(args) -> GradingSettings:
    base = GradingSettings()
    limits = Limits(
        memory_mb=args.memory_mb,
        max_processes=base.limits.max_processes,
        file_size_mb=base.limits.file_size_mb,
        cpu_seconds=base.limits.cpu_seconds,
        disk_mb=base.limits.disk_mb,
        total_memory_mb=args.total_memory_mb,
    )
    return replace(
        base,
        assignment=args.assignment,
        source_root=Path(args.source).resolve() if args.source else base.source_root,
        name_pattern=args.pattern or base.name_pattern,
        jobs=args.jobs,
        cell_timeout=args.cell_timeout,
        notebook_timeout=args.notebook_timeout,
        submission_timeout=args.submission_timeout,
        isolation=args.isolation,
        limits=limits,
        experiment_profile=args.experiment_profile,
        similarity_threshold=args.similarity_threshold,
    )


def main(argv: list[str] | None = None) -> int:
    defaults = GradingSettings()
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser(
        "grade", help="grade a folder of submissions (zip files and/or folders, or nbgrader's submitted/ layout)"
    )
    g.add_argument(
        "submissions",
        type=Path,
        help="folder of the LMS download, or an nbgrader course folder (or its submitted/) after `nbgrader collect`",
    )
    g.add_argument("--out", type=Path, required=True, help="output folder (grades.csv, feedback/, report.html)")
    g.add_argument(
        "--student",
        action="append",
        metavar="ID",
        help="re-grade only this student (repeatable); other rows are left as they are",
    )
    g.add_argument("--jobs", type=int, default=defaults.jobs, help="submissions graded at once (default: %(default)s)")
    g.add_argument("--isolation", choices=["auto", "bubblewrap", "process"], default="auto")
    for timeout in ("cell_timeout", "notebook_timeout", "submission_timeout"):
        g.add_argument(
            "--" + timeout.replace("_", "-"),
            type=int,
            help="seconds (default: %(default)s)",
            default=getattr(defaults, timeout),
            metavar="S",
        )
    g.add_argument(
        "--memory-mb",
        type=int,
        default=defaults.limits.memory_mb,
        help="memory of each process of a kernel (default: %(default)s)",
    )
    g.add_argument(
        "--total-memory-mb",
        type=int,
        default=defaults.limits.total_memory_mb,
        help="memory of all the processes of a submission together; they are stopped at this cap, "
        "with a flag (default: %(default)s)",
    )
    g.add_argument("--assignment", default=defaults.assignment)
    g.add_argument("--source", help="folder holding ASSIGNMENT/ source notebooks (default: solutions/)")
    g.add_argument("--pattern", help="regular expression of archive names with (?P<student_id>...)")
    g.add_argument(
        "--experiment-profile",
        choices=ASSIGNMENT.profiles.names,
        default=defaults.experiment_profile,
        help="what notebooks 05/06 must have run: the brief's settings (a term) or their "
        "SMOKE_TEST mode (a rehearsal) (default: %(default)s)",
    )
    g.add_argument(
        "--similarity-threshold",
        type=float,
        default=defaults.similarity_threshold,
        metavar="F",
        help="flag two submissions whose code or written answers are at least this alike, "
        "0 to 1 (default: %(default)s; see similarity.html)",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="grade every submission again (default: only those new or changed, or graded by other "
        "settings, course or grader since the last run in OUT)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on the Dask cluster of this scheduler (tcp://HOST:8786), one task per submission "
        "(default: on this machine)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    m = sub.add_parser("manual-list", help="list the answers to grade by hand")
    m.add_argument("out", type=Path)
    m.add_argument("--assignment", default=defaults.assignment)

    mm = sub.add_parser("manual-merge", help="merge hand-entered scores into the gradebook and grades.csv")
    mm.add_argument("out", type=Path)
    mm.add_argument("--scores", type=Path, required=True, help="manual_cells.csv with the score column filled in")
    mm.add_argument("--assignment", default=defaults.assignment)

    args = parser.parse_args(argv)
    if args.command == "grade":
        from .collect import LayoutError, detect_layout
        from .grade import grade

        settings = _settings(args)
        try:
            found = detect_layout(args.submissions.resolve(), settings.assignment)
        except LayoutError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"submissions: {found.describe()}")
        if args.scheduler:  # Dask is imported only to grade on a cluster
            from .distributed import ClusterCannotGrade as cluster_error
        else:
            cluster_error = ()  # catches nothing
        try:
            summary = grade(
                args.submissions,
                args.out,
                settings,
                only=args.student,
                progress=not args.quiet,
                force=args.force,
                scheduler=args.scheduler,
            )
        except cluster_error as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        where = f"on the cluster at {args.scheduler}" if args.scheduler else f"{settings.jobs} at once"
        print(
            f"graded {summary.graded} submission(s) in {summary.seconds:.1f} s "
            f"({summary.seconds / max(summary.graded, 1):.1f} s each, {where})"
        )
        print(f"isolation: {summary.isolation}")
        if summary.failed:
            print(f"not graded (scored 0, see flags): {', '.join(summary.failed)}")
        if summary.flagged:
            print(f"flagged: {len(summary.flagged)} submission(s) (the flags column of grades.csv):")
            print("\n".join("  " + line for line in summary.flag_lines()))
        if summary.similar:
            print(f"alike: {len(summary.similar)} pair(s) of submissions (similarity.html):")
            print("\n".join("  " + line for line in summary.similar))
        layout = OutputLayout(Path(summary.out))
        print(
            f"grades:   {layout.grades_csv}\nreport:   {layout.report_html}\n"
            f"feedback: {layout.feedback_dir}\nby hand:  {layout.manual_cells_csv}\n"
            f"alike:    {layout.similarity_html}"
        )
        return 0
    from . import manual, manual_merge

    out = args.out.resolve()
    layout = OutputLayout(out)
    if args.command == "manual-list":
        db = layout.gradebook_db
        if not db.exists():
            print(f"error: {db} not found; run `python -m autograder grade` first", file=sys.stderr)
            return 2
        path = manual.write_manual_list(out, db, args.assignment)
        print(f"{manual.describe(manual.manual_cells(db, args.assignment))}: {path}")
        return 0
    try:
        count = manual_merge.merge(out, args.scores.resolve(), args.assignment)
    except (manual.ScoreError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"merged {count} score(s); rewrote {layout.grades_csv}, {layout.manual_cells_csv}, "
        f"the students' summary pages and {layout.report_html}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
