"""The registry-only install: `dcreg` works without torch, torchvision, scikit-learn or scipy.

Each command runs in a subprocess whose interpreter cannot import those packages (a
``sitecustomize`` on PYTHONPATH puts a blocking finder first on ``sys.meta_path``), which is what
``pip install dcregistry`` without the ``harness`` extra gives. ``harness`` itself must then
exit 1 with a message naming the extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from .registry.published_helpers import catalog_text, file_server, sha256, write_kip_npz  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "torchvision", "sklearn", "scipy")

SITECUSTOMIZE = textwrap.dedent(f"""
    import sys

    class _HarnessOnly:
        blocked = {BLOCKED!r}

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ModuleNotFoundError(f"No module named {{name!r}} (registry-only install)",
                                          name=name)
            return None

    sys.meta_path.insert(0, _HarnessOnly())
""")


@pytest.fixture
def slim(tmp_path: Path):
    """run(*args, prog="dcreg") in a torch-less interpreter; returns CompletedProcess."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(
        os.environ,
        PYTHONPATH=f"{site}{os.pathsep}{ROOT}",
        DCREG_HOME=str(tmp_path / "home"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("DCREG_PUBLISHED_CATALOG", None)

    def run(*args, prog: str = "dcreg", extra_env: dict | None = None):
        entry = {"dcreg": "from dcregistry.cli import main", "harness": "from harness.cli import main"}[prog]
        code = f"import sys; {entry}; sys.argv[0] = {prog!r}; main()"
        return subprocess.run(
            [sys.executable, "-c", code, *map(str, args)],
            cwd=tmp_path,
            env=dict(env, **(extra_env or {})),
            capture_output=True,
            text=True,
            timeout=120,
        )

    run.env = env
    return run


def test_the_blocker_really_blocks(slim):
    r = subprocess.run(
        [sys.executable, "-c", "import torch"], env=slim.env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0 and "registry-only install" in r.stderr


def test_dcreg_registry_commands_without_torch(slim, tmp_path):
    rng = np.random.default_rng(0)
    npz = tmp_path / "set.npz"
    np.savez(
        npz, images=rng.uniform(0, 1, (20, 1, 8, 8)).astype(np.float32), labels=np.repeat(np.arange(10), 2)
    )
    steps = [
        (
            "import",
            npz,
            "--format",
            "npz",
            "--dataset",
            "digits",
            "--method",
            "random",
            "-o",
            tmp_path / "art",
        ),
        ("verify", tmp_path / "art"),
        ("push", tmp_path / "art", "--name", "lab/slim", "--tag", "first"),
        ("list", "--json"),
        ("pull", "lab/slim@first", "-o", tmp_path / "pulled"),
        ("verify", "lab/slim"),
        ("show", "lab/slim"),
        ("card", "lab/slim"),
        ("export", "lab/slim", "--format", "npz", "-o", tmp_path / "out.npz"),
        ("export", "lab/slim", "--format", "png", "-o", tmp_path / "grid.png"),
        ("published", "--json", "--method", "kip"),
    ]
    outputs = {}
    for args in steps:
        r = slim(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        outputs[args[0]] = r.stdout
    assert json.loads(outputs["list"])[0]["name"] == "lab/slim"
    assert (tmp_path / "pulled" / "data.safetensors").is_file()
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert json.loads(outputs["published"])


def test_dcreg_fetch_of_an_npz_set_without_torch(slim, tmp_path, file_server):
    kip = write_kip_npz(file_server.root)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        catalog_text(
            [
                {
                    "name": "kip-slim",
                    "title": "kip",
                    "method": "kip",
                    "dataset": "cifar10",
                    "ipc": 1,
                    "format": "kip-npz",
                    "license": "Apache-2.0",
                    "page": "https://github.com/x/y",
                    "source": {"kind": "https"},
                    "files": [{"url": f"{file_server.base_url}/{kip.name}", "sha256": sha256(kip)}],
                }
            ]
        )
    )
    r = slim("fetch", "kip-slim", "--catalog", catalog, "-o", tmp_path / "kip", "--push", "lab/kip", "-q")
    assert r.returncode == 0, r.stderr
    assert "lab/kip@v1" in r.stdout


def test_serve_app_and_pages_without_torch(slim, tmp_path):
    """`dcreg serve` is a registry command: its app (Hub API + pages) runs without torch."""
    assert slim("serve", "--help").returncode == 0
    script = textwrap.dedent("""
        from fastapi.testclient import TestClient
        from dcregistry.server import create_app
        assert TestClient(create_app()).get("/").status_code == 421  # host "testserver" is foreign
        c = TestClient(create_app(), base_url="http://localhost")
        assert c.get("/").status_code == 200
        assert c.get("/lab/slim").status_code == 404
        assert c.get("/api/datasets/lab/slim").status_code == 404
        print("ok")
    """)
    r = subprocess.run(
        [sys.executable, "-c", script],
        env=slim.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_pt_files_without_torch_are_a_clear_user_error(slim, tmp_path):
    pt = tmp_path / "res_DC_CIFAR10_ConvNet_1ipc.pt"
    import torch  # the test process has torch; the slim interpreter below does not

    torch.save({"data": [[torch.zeros(10, 3, 32, 32), torch.arange(10)]], "accs_all_exps": {}}, pt)
    r = slim("import", pt, "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "x")
    assert r.returncode == 1, f"reading a .pt without torch should be a user error: {r.stderr}"
    assert "dcregistry[harness]" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    from dcregistry.artifact import build_artifact

    art = build_artifact(
        tmp_path / "art",
        {"images": np.zeros((10, 1, 8, 8), np.float32), "labels": np.arange(10)},
        {
            "dataset": "digits",
            "image_shape": [1, 8, 8],
            "ipc": 1,
            "method": "random",
            "method_config": {},
            "pixel_space": {"kind": "unit"},
            "label_kind": "hard",
            "seed": 0,
            "license": "cc-by-4.0",
        },
    )
    r = slim("export", art.path, "--format", "pt", "-o", tmp_path / "o.pt")
    assert r.returncode == 1 and "dcregistry[harness]" in r.stderr, r.stderr
    assert not (tmp_path / "o.pt").exists()


@pytest.mark.parametrize("args", [("eval", "lab/x"), ("protocols",)])
def test_harness_without_torch_says_which_extra_to_install(slim, args):
    r = slim(*args, prog="harness")
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "dcregistry[harness]" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
