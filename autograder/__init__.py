"""The course's autograder: ``python -m autograder grade SUBMISSIONS --out OUT``.

Built on nbgrader (zip_collect, autograde, generate_feedback, export, its
gradebook) with the course configuration in ``autograder/nbgrader_config.py``;
see :mod:`autograder.grade` for the run and :mod:`autograder.sandbox` for the
isolation of each submission.
"""

import os
import sys

# The grader forks one process per submission, and a process should have no other threads
# when it forks (a lock another thread holds stays locked in the child; Python 3.12+ warns).
# NumPy's OpenBLAS starts a worker thread per core when imported; the grader itself does no
# linear algebra worth threads (the kernels get their own settings), so it asks for none,
# unless NumPy is loaded already (then it is too late, and the caller's setting stands).
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Speed, about 1 s at the start of every autograder command: nbformat imports jsonschema, whose optional
# checker for the "iri" string format imports rfc3987_syntax, which compiles a Lark
# grammar at import time. Nothing here validates IRIs (nbformat's schema has no such
# format), so the optional import is blocked; jsonschema skips that checker when the
# import fails. setdefault: leaves the module alone if something imported it already.
sys.modules.setdefault("rfc3987_syntax", None)
