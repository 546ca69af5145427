"""The course's nbgrader configuration (nbgrader 0.9).

Used by `make exercises` (scripts/generate_exercises.py) to make exercises/
from solutions/, and by the autograder. The course root is the repository:
nbgrader's "source" step is solutions/ and its "release" step is exercises/.
"""

from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

COURSE_ROOT = Path(__file__).resolve().parent.parent

c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.course_id = "dnn-from-scratch"

# What a student sees in place of each solution region.
c.ClearSolutions.code_stub = {
    "python": "# ============================== EDIT HERE ==============================\nraise NotImplementedError()"
}
c.ClearSolutions.text_stub = "EDIT HERE: write your answer in this cell."
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Students never receive outputs of the instructor's runs.
c.ClearOutput.enabled = True
