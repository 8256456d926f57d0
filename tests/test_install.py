"""Installation for students and teachers: the repository setting, versions, licences, JupyterLab."""

import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

import mlmcourse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import book_html  # noqa: E402  (tools/ is not a package)
import coursenb  # noqa: E402

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_package_version_is_the_project_version():
    assert mlmcourse.__version__ == VERSION == coursenb.course_version()


def test_without_a_repository_no_button_or_install_line_points_anywhere():
    options = book_html.repository_buttons({"repository_url": "", "use_repository_button": True,
                                            "use_issues_button": True,
                                            "launch_buttons": {"binderhub_url": "https://binder.example"}})
    assert not any(options[key] for key in book_html.REPOSITORY_BUTTONS)
    assert options["launch_buttons"] == {}
    cell = coursenb.environment_check(repository="")
    assert "git+" not in cell and "http" not in cell
    assert f"mlmcourse-{VERSION}-py3-none-any.whl" in cell


def test_with_a_repository_the_buttons_and_the_install_line_use_it():
    url = "https://example.org/teacher/mlmcourse"
    options = book_html.repository_buttons({"repository_url": url, "use_repository_button": True,
                                            "launch_buttons": {"colab_url": "https://colab.example"}})
    assert options["use_repository_button"] and options["launch_buttons"]
    assert f"%pip install git+{url}" in coursenb.environment_check(repository=url)


def test_the_student_notebooks_follow_the_configured_setting():
    expected = coursenb.environment_check()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        import nbformat

        first = nbformat.read(notebook, as_version=4).cells[0].source
        assert first == expected, f"{notebook.name}: run `make notebooks`"
    if not coursenb.repository_url():
        assert "git+http" not in (ROOT / "README.md").read_text()


def test_every_notebook_names_the_course_version():
    cell = coursenb.environment_check()
    assert f'COURSE_VERSION = "{VERSION}"' in cell


def test_the_environment_check_runs_and_reports_the_version(capsys):
    exec(compile(coursenb.environment_check(), "<first cell>", "exec"), {})
    assert f"mlmcourse {VERSION} and its data are ready." in capsys.readouterr().out


def test_code_and_text_licences_are_shipped():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in (ROOT / "LICENSE-TEXT.md").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(project["license-files"]) == {"LICENSE", "LICENSE-TEXT.md"}


def test_the_grading_command_is_a_console_script():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["mlmcourse-grade"] == "mlmcourse.grading:main"
    script = Path(sys.executable).with_name("mlmcourse-grade")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "submissions" in done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyter_lab_starts_a_server(tmp_path):
    jupyter = Path(sys.executable).with_name("jupyter")
    if not (shutil.which("jupyter-lab", path=str(jupyter.parent))):
        pytest.fail("JupyterLab is not installed in the course environment (the README tells students to use it)")
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    server = subprocess.Popen([str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                               "--ServerApp.token=", "--ServerApp.password=", "--allow-root",
                               f"--ServerApp.root_dir={tmp_path}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as reply:
                    status = reply.status
            except OSError:
                time.sleep(1)
        assert status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
