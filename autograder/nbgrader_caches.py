"""Work nbgrader repeats for every notebook, done once per grading process.

nbgrader grades one student by running a chain of converters and preprocessors per notebook,
and three of its steps redo, each time, work whose result never changes within a process:

* **The gradebook's engine.** Every preprocessor opens the gradebook
  (:class:`nbgrader.api.Gradebook`): dozens of openings per student. Each opening creates a
  SQLAlchemy engine, and SQLAlchemy keeps its compiled statements per engine, so the same few
  queries are compiled again at every opening. Here nbgrader's ``create_engine`` returns the
  engine it already made for the same database address. ``Gradebook.close`` still disposes
  of the engine's connections: nothing stays open between openings, and each opening reads
  what is on disk.
* **The cell metadata schema.** ``CheckCellMetadata`` validates every cell's nbgrader metadata
  with ``jsonschema.validate``, which first checks the schema itself and builds a validator, on
  every call. Here the validator of a schema is built once; a cell is judged as before (the
  same validator class, the same error: :func:`jsonschema.exceptions.best_match`).

* **The gradebook's schema version.** A new gradebook records the newest of nbgrader's
  database migrations, which nbgrader learns by running the ``alembic heads`` command: a fresh
  interpreter that imports nbgrader (seconds of CPU, most of it ``jsonschema`` building its
  format grammars, which :mod:`autograder` blocks in its own process). Here the same migration folder is read in this process, once
  (``alembic``'s :class:`~alembic.script.ScriptDirectory`, which that command uses).

:func:`install` applies all three to this process; the grading run calls it before it forks its jobs
and each job calls it again (a job run on a Dask worker starts a fresh interpreter).
"""

from __future__ import annotations

import functools
import json

import jsonschema
import nbgrader.api
import nbgrader.dbutil
import nbgrader.nbgraderformat.common
import sqlalchemy

_CREATE_ENGINE = sqlalchemy.create_engine


@functools.cache
def _engine(db_url: str, options: tuple) -> sqlalchemy.engine.Engine:
    return _CREATE_ENGINE(db_url, **dict(options))


def shared_engine(db_url, **options) -> sqlalchemy.engine.Engine:
    """``sqlalchemy.create_engine(db_url, **options)``, the same engine for the same arguments."""
    return _engine(str(db_url), tuple(sorted(options.items())))


@functools.cache
def _validator(schema_text: str):
    schema = json.loads(schema_text)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


class CachedSchemaValidation:
    """Stands for the ``jsonschema`` module inside nbgrader's metadata validation: ``validate`` with a
    validator built once per schema; everything else is ``jsonschema``'s own."""

    ValidationError = jsonschema.ValidationError

    @staticmethod
    def validate(instance, schema) -> None:
        """As ``jsonschema.validate(instance, schema)``: raise the best-matching error, if any."""
        error = jsonschema.exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name):
        return getattr(jsonschema, name)


@functools.cache
def alembic_head() -> str:
    """The revision of nbgrader's newest database migration (what ``alembic heads`` prints first)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(nbgrader.dbutil.ALEMBIC_DIR).get_current_head()


def install() -> None:
    """Apply the three caches to nbgrader in this process (idempotent)."""
    nbgrader.api.create_engine = shared_engine
    nbgrader.api.get_alembic_version = alembic_head
    nbgrader.nbgraderformat.common.jsonschema = CachedSchemaValidation()
