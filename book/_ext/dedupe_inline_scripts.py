"""Sphinx extension: print each inline <script> of a page once.

Sphinx 7.4 adds an inline script registered after the builder started (``app.add_js_file(None,
body=...)``, as sphinx-thebe and sphinx-togglebutton do) twice: once with ``filename=None``
and again with ``filename=''`` while preparing to write, and the two do not compare equal.
The page then declares ``const THEBE_JS_URL`` twice and the browser raises
"SyntaxError: Identifier 'THEBE_JS_URL' has already been declared" on every page.
Fixed upstream in Sphinx 8.2 (sphinx-doc/sphinx#13402); Jupyter Book 1.0 pins Sphinx 7.
Remove this extension (and its entry in _config.yml) once the course moves to a fixed Sphinx.
"""

from __future__ import annotations


def _key(script) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {})
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated scripts from the page's `script_files`, keeping the first of each."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # Late priority: after the themes have added and re-ordered their assets.
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
