"""Sphinx extension: launch buttons (Binder, JupyterHub) only on the pages they can open.

The launch buttons open a page's notebook in the students' repository (``repository.url`` of
``_config.yml``), the kit that ``make release`` writes. The kit holds the exercise notebooks at
the same paths as this site's exercise pages, and none of the chapters: a chapter's button
would open a file that does not exist there (and, before, a ``.md`` file that Colab cannot
read). This extension removes the launch group from every page whose source is not a
``.ipynb`` file, after sphinx-book-theme has added it (its handler runs at priority 501).
"""

from __future__ import annotations

from pathlib import Path


def keep_launch_buttons_on_notebooks(app, pagename, templatename, context, doctree) -> None:
    if pagename not in app.env.all_docs:
        return
    if Path(app.env.doc2path(pagename)).suffix == ".ipynb":
        return
    buttons = context.get("header_buttons")
    if buttons:
        context["header_buttons"] = [b for b in buttons if b.get("label") != "launch-buttons"]


def setup(app):
    app.connect("html-page-context", keep_launch_buttons_on_notebooks, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
