"""Sphinx extension for the HTML book: MathJax from a local copy, and a clean browser console.

* MathJax 3 comes from the PyPI package ``sphinx-mathjax-offline`` (its ``static/mathjax``
  folder: the es5 components and fonts of MathJax 3.2.2). When the build finishes the folder is
  copied to ``_static/mathjax`` of the built site, where ``mathjax_path`` (set in ``_config.yml``
  to ``mathjax/tex-chtml.js``) points, so the book renders its math without a network.
* Inline scripts that Sphinx 7.4 lists twice (an extension adding a script after the builder
  started: sphinx-thebe's ``const THEBE_JS_URL`` then throws "already declared") are listed once.
* The repository address is one setting, ``repository.url`` in ``_config.yml``. While it is
  empty, no repository, issues, edit or launch (Binder, Colab) button is shown, since none would
  lead anywhere. Every page's footer names the course version (the package's), so a semester can
  pin one.
* The theme's colour mode (``default_mode`` of the page context) is "auto" unless set; left
  empty, a first visit logs "Got invalid theme mode" to the console before falling back to
  "auto" anyway.

Registered in ``_config.yml`` under ``sphinx.local_extensions``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

MATHJAX_PACKAGE = "sphinx-mathjax-offline"


def mathjax_source() -> Path:
    """MathJax 3 as shipped by the PyPI package sphinx-mathjax-offline."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {MATHJAX_PACKAGE!r} is not installed: run `make venv`")
    folder = Path(list(spec.submodule_search_locations)[0], "static", "mathjax")
    if not (folder / "tex-chtml.js").is_file():
        raise RuntimeError(f"{folder} holds no MathJax 3 (tex-chtml.js is missing)")
    return folder


def _local_mathjax(app) -> str | None:
    """The path of MathJax below ``_static``, when the book loads it locally."""
    path = getattr(app.config, "mathjax_path", "") or ""
    if not path or "://" in path or path.startswith("/"):
        return None
    return path


def _check_mathjax_path(app, config) -> None:
    path = _local_mathjax(app)
    if path is not None and not (mathjax_source().parent / path).is_file():
        raise RuntimeError(f"mathjax_path {path!r} names no file of {MATHJAX_PACKAGE} "
                           "(try 'mathjax/tex-chtml.js')")


REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button",
                      "use_source_button")


def repository_buttons(options: dict) -> dict:
    """Repository, issues and launch buttons on when an address is set, all off when it is not.

    (``_config.yml`` keeps the button switches off, because Jupyter Book refuses them without an
    address; this turns them on once ``repository.url`` is filled in.)
    """
    options = dict(options)
    has_address = bool(str(options.get("repository_url") or "").strip())
    options.update({key: has_address for key in ("use_repository_button", "use_issues_button")})
    options.update({key: False for key in REPOSITORY_BUTTONS if key not in ("use_repository_button",
                                                                             "use_issues_button")})
    if not has_address:
        options["launch_buttons"] = {}
    return options


def course_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlmcourse")
    except PackageNotFoundError:
        return "unknown"


def _theme_options(app, config) -> None:
    options = repository_buttons(getattr(config, "html_theme_options", {}) or {})
    footer = f"Course version {course_version()}."
    options["extra_footer"] = (options.get("extra_footer") or "") + f"<p>{footer}</p>"
    config.html_theme_options = options


def _default_theme_mode(app, pagename, templatename, context, doctree) -> None:
    if not context.get("default_mode"):  # pydata-sphinx-theme reads it from html_context
        context["default_mode"] = "auto"


def _script_key(script) -> tuple:
    return (str(getattr(script, "filename", script) or ""),
            tuple(sorted((getattr(script, "attributes", {}) or {}).items())))


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html" or _local_mathjax(app) is None:
        return
    shutil.copytree(mathjax_source(), Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _check_mathjax_path)
    app.connect("config-inited", _theme_options)
    app.connect("html-page-context", _default_theme_mode)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
