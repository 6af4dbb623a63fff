"""The Sphinx fixes of book/_ext/html_fixes.py on their own (the browser test sees the effect)."""

import importlib.util
from types import SimpleNamespace

from _book import ROOT
from docutils import nodes

spec = importlib.util.spec_from_file_location("html_fixes", ROOT / "book/_ext/html_fixes.py")
html_fixes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(html_fixes)


def _math(text, **attrs):
    node = nodes.math_block(text, text, nowrap=False, number=None, **attrs)
    doc = nodes.document(None, None)
    doc += node
    html_fixes.tags_outside_split(None, doc)
    return node


def test_a_numbered_multiline_formula_keeps_its_tag_outside_split():
    node = _math(
        r"R(h) = \begin{cases} 0, & h \ge 0, \\ \infty, & \text{else.} \end{cases} \tag{39}"
    )
    assert node["nowrap"]
    text = node.astext()
    assert text.startswith(r"\[\begin{split}R(h) = \begin{cases}")
    assert text.endswith(r"\end{cases}\end{split}\tag{39}\]")


def test_other_formulas_are_left_to_sphinx():
    for text in (r"a = b \tag{1}", r"a \\ b", r"a \\ b \tag{2}" + "\n\n" + "c"):
        node = _math(text)
        assert not node["nowrap"] and node.astext() == text
    assert not _math(r"a \\ b \tag{3}", label="eq")["nowrap"]


def test_repeated_inline_scripts_are_dropped():
    def script(filename, body):
        return SimpleNamespace(filename=filename, priority=500, attributes={"body": body})

    scripts = [script(None, "const A = 1"), script("x.js", ""), script("", "const A = 1")]
    context = {"script_files": scripts}
    html_fixes.drop_repeated_scripts(None, "page", "page.html", context, None)
    assert [s.filename for s in context["script_files"]] == [None, "x.js"]
    assert context["script_files"] is scripts  # the builder's own list, edited in place
