"""Sphinx extension: make the repository of _config.yml available to the pages.

The repository URL is written once, in ``_config.yml`` (``repository.url``), where the
launch, source and issue buttons read it. This extension adds MyST substitutions from it,
so a page can say ``{{ repository_url }}`` (e.g. in a ``{parsed-literal}`` block of shell
commands) instead of repeating the address:

- ``repository_url``: ``https://github.com/<owner>/<name>``
- ``repository_name``: ``<name>``, the folder ``git clone`` creates
"""

from __future__ import annotations


def add_repository_substitutions(app, config) -> None:
    url = (config.html_theme_options or {}).get("repository_url", "").rstrip("/")
    if not url:
        return
    substitutions = dict(config.myst_substitutions or {})
    substitutions.setdefault("repository_url", url)
    substitutions.setdefault("repository_name", url.rsplit("/", 1)[-1].removesuffix(".git"))
    config.myst_substitutions = substitutions


def setup(app):
    app.connect("config-inited", add_repository_substitutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
