"""What users install: the sdist and wheel built with `python -m build`, the wheel installed
non-editable into a fresh virtual environment, and every documented command run from a
directory outside the checkout (so nothing can come from the source tree)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _packages_in_tree() -> set[str]:
    out = set()
    for top in ("dcregistry", "harness"):
        for init in (ROOT / top).rglob("__init__.py"):
            out.add(".".join(init.parent.relative_to(ROOT).parts))
    return out | {"dcregistry.cards"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--sdist",
            "--wheel",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("dcregistry-*.whl"))
    sdist = next(dist.glob("dcregistry-*.tar.gz"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # Dependencies come from this interpreter's site-packages as a plain path (a path line in a
    # .pth is not itself scanned for .pth files, so this checkout's editable install stays out).
    purelib = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        DCREG_HOME=str(tmp / "home"),
        HF_HUB_CACHE=str(tmp / "hf-cache"),
        PYTHONNOUSERSITE="1",
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        OMP_NUM_THREADS="1",
    )
    return {"wheel": wheel, "sdist": sdist, "venv": venv, "py": py, "work": work, "env": env}


def _run(installed: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=installed["work"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_wheel_holds_every_package_and_the_sdist_the_tests(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    shipped = {os.path.dirname(n).replace("/", ".") for n in names if n.endswith("__init__.py")}
    assert _packages_in_tree() <= shipped, _packages_in_tree() - shipped
    for data in (
        "dcregistry/cards/card_template.md",
        "dcregistry/cards/metadata.schema.json",
        "dcregistry/server/templates/base.html",
        "harness/protocols/dsa.toml",
        "dcregistry/py.typed",
        "harness/py.typed",
    ):
        assert data in names, data
    members = tarfile.open(installed["sdist"]).getnames()
    assert any(m.endswith("tests/fixtures/official_matching_pins.json") for m in members)
    assert any(m.endswith("tests/test_wheel.py") for m in members)


def test_every_documented_command_runs_from_the_installed_wheel(installed):
    out = _run(
        installed,
        installed["py"],
        "-c",
        "import dcregistry, harness; print(dcregistry.__file__, harness.__file__)",
    )
    assert out.returncode == 0, out.stderr
    assert all(str(installed["venv"]) in p for p in out.stdout.split()), out.stdout  # not the checkout

    def ok(*args, timeout=300):
        r = _run(installed, *args, timeout=timeout)
        assert r.returncode == 0, (args, r.stderr[-2000:])
        return r

    ok("harness", "condense", "digits", "--method", "random", "--ipc", "2", "-o", "set", "-q")
    ok("dcreg", "push", "set", "--name", "lab/wheel", "--tag", "first")
    ok("dcreg", "list", "dataset=digits", "--json")
    ok("dcreg", "show", "lab/wheel@first")
    ok("dcreg", "verify", "lab/wheel")
    ok("dcreg", "pull", "lab/wheel", "-o", "pulled")
    ok("dcreg", "card", "lab/wheel")
    ok("dcreg", "export", "lab/wheel", "--format", "npz", "-o", "set.npz")
    ok("dcreg", "export", "lab/wheel", "--format", "png", "-o", "grid.png")
    ok("dcreg", "export", "lab/wheel", "--format", "hf-datasets", "-o", "hfds")
    ok("dcreg", "import", "set.npz", "--format", "npz", "--dataset", "digits", "-o", "imported")
    ok("dcreg", "import", "set.npz", "--format", "npz", "--dataset", "digits", "-o", "imported2")
    ok(
        "harness",
        "eval",
        "lab/wheel",
        "--protocol",
        "dc-noaug",
        "--epochs",
        "2",
        "--runs",
        "1",
        "--record",
        "-q",
    )
    ok("dcreg", "tag", "lab/wheel@v1", "best")
    ok("dcreg", "untag", "lab/wheel", "best")
    ok("dcreg", "gc", "--dry-run")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = installed["work"] / "token"
    token.write_text("wheel-token")
    proc = subprocess.Popen(
        ["dcreg", "serve", "--port", str(port), "--token-file", str(token), "--log-level", "warning"],
        cwd=installed["work"],
        env=installed["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/dcreg/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(
                proc.stderr.read().decode()[-2000:] if proc.stderr else "serve did not start"
            )
        installed["env"]["DCREG_TOKEN"] = "wheel-token"
        ok("dcreg", "push", "set", "--name", "lab/served", "--store", url)
        ok("dcreg", "pull", "lab/served", "-o", "from-server", "--store", url)
        page = httpx.get(f"{url}/lab/wheel")
        assert page.status_code == 200 and "lab/wheel" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
