"""The course's autograder: ``python -m autograder grade SUBMISSIONS --out OUT``.

Built on nbgrader (zip_collect, autograde, generate_feedback, export, its
gradebook) with the course configuration in ``autograder/nbgrader_config.py``;
see :mod:`autograder.grade` for the run and :mod:`autograder.sandbox` for the
isolation of each submission.
"""

import sys

# Speed, about 1 s per grading process: nbformat imports jsonschema, whose optional
# checker for the "iri" string format imports rfc3987_syntax, which compiles a Lark
# grammar at import time. Nothing here validates IRIs (nbformat's schema has no such
# format), so the optional import is blocked; jsonschema skips that checker when the
# import fails. setdefault: leaves the module alone if something imported it already.
sys.modules.setdefault("rfc3987_syntax", None)
