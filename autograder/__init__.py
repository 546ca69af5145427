"""The course's autograder: ``python -m autograder grade SUBMISSIONS --out OUT``.

Built on nbgrader (zip_collect, autograde, generate_feedback, export, its
gradebook) with the course configuration in ``autograder/nbgrader_config.py``;
see :mod:`autograder.grade` for the run and :mod:`autograder.sandbox` for the
isolation of each submission.
"""
