"""The course's maintenance scripts, each run as ``python scripts/<name>.py`` (or a make target).

A package so that the tests import them (``from scripts import make_release``) as any module,
instead of loading them by file path.
"""
