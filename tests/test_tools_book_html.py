"""tools/book_html.py, the Sphinx extension that gives the HTML book a local MathJax."""

import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import book_html  # noqa: E402  (tools/ is not a package)


def _app(tmp_path, mathjax_path="mathjax/tex-chtml.js", fmt="html"):
    return SimpleNamespace(config=SimpleNamespace(mathjax_path=mathjax_path),
                           builder=SimpleNamespace(format=fmt), outdir=str(tmp_path))


def test_the_package_ships_mathjax_3_with_fonts():
    folder = book_html.mathjax_source()
    assert (folder / "tex-chtml.js").is_file()
    assert any((folder / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_the_book_loads_mathjax_from_its_own_static_folder():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-chtml.js"
    assert config["sphinx"]["local_extensions"]["book_html"] == "tools/"


def test_mathjax_is_copied_into_the_built_site(tmp_path):
    book_html._copy_mathjax(_app(tmp_path), None)
    assert (tmp_path / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_nothing_is_copied_for_a_remote_mathjax_or_a_failed_build(tmp_path):
    book_html._copy_mathjax(_app(tmp_path, "https://example.org/mathjax.js"), None)
    book_html._copy_mathjax(_app(tmp_path), RuntimeError("build failed"))
    book_html._copy_mathjax(_app(tmp_path, fmt="latex"), None)
    assert not (tmp_path / "_static").exists()


class _Script(str):
    def __new__(cls, filename, **attributes):
        self = super().__new__(cls, filename or "")
        self.filename, self.attributes = filename, attributes
        return self


def test_an_inline_script_listed_twice_is_kept_once():
    first = _Script(None, body="const THEBE_JS_URL = 'x'", priority=500)
    twin = _Script("", body="const THEBE_JS_URL = 'x'", priority=500)
    other = _Script("doctools.js", priority=200)
    context = {"script_files": [other, first, twin]}
    book_html._dedupe_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == [other, first]


def test_the_colour_mode_defaults_to_auto_but_a_choice_stays():
    empty, chosen = {"default_mode": ""}, {"default_mode": "dark"}
    book_html._default_theme_mode(None, "page", "page.html", empty, None)
    book_html._default_theme_mode(None, "page", "page.html", chosen, None)
    assert empty["default_mode"] == "auto" and chosen["default_mode"] == "dark"
