"""The pages of the book, read from its Jupyter Book table of contents (``_toc.yml``).

Reads: the ``_toc.yml`` given. Writes: nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml


def toc_docnames(toc_path: Path) -> list[str]:
    """Document names listed in a Jupyter Book _toc.yml (root first), e.g. 'book/00_introduction'."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: value for key, value in toc.items() if key != "root"})
    return [re.sub(r"\.(md|ipynb)$", "", name) for name in names]
