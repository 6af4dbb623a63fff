"""Sphinx extension: two fixes to the HTML that Sphinx 7.4 (Jupyter Book 1's release) writes.

1. Display mathematics with a line break and an equation number, such as
   ``$$ R(h) = \\begin{cases} ... \\\\ ... \\end{cases} \\tag{39} $$``: Sphinx wraps every block
   that contains ``\\\\`` in ``\\begin{split} ... \\end{split}``, and MathJax refuses a ``\\tag``
   inside ``split`` (it prints "\\tag not allowed in split environment" instead of the formula).
   The review's numbers are written as a final ``\\tag{N}`` (see DESIGN.md), so such a block is
   written as ``\\[ \\begin{split} BODY \\end{split} \\tag{N} \\]``: the same split, the tag
   outside it.
2. Sphinx registers an inline script that an extension adds after the builder started twice
   (once with the file name ``None``, once with ``""``); both copies reach every page, and the
   repeated ``const THEBE_JS_URL`` of sphinx-thebe is a ``SyntaxError`` in the reader's console.
   Repeated scripts are dropped before a page is written.
"""

from __future__ import annotations

import re

from docutils import nodes

_FINAL_TAG = re.compile(r"\\tag\*?\{[^{}]*\}\s*$")


def tags_outside_split(app, doctree):
    for node in doctree.findall(nodes.math_block):
        if node.get("nowrap") or node.get("label") or node.get("number"):
            continue
        text = node.astext().strip()
        parts = [p for p in text.split("\n\n") if p.strip()]
        tag = _FINAL_TAG.search(text)
        if len(parts) != 1 or tag is None or "\\\\" not in text:
            continue
        body = text[: tag.start()].strip()
        node.children = [
            nodes.Text(rf"\[\begin{{split}}{body}\end{{split}}{tag.group(0).strip()}\]")
        ]
        node["nowrap"] = True


def _script_key(script):
    return (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("doctree-read", tags_outside_split)
    app.connect("html-page-context", drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
