"""`dcreg published` and `dcreg fetch`: the shipped catalog, and downloads from a local HTTP
server of files in the real published formats (DC res_*.pt, MTT trio, KIP .npz)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcregistry.artifact import open_artifact
from dcregistry.published import CatalogError, load_catalog
from dcregistry.published.download import DownloadError, http_download
from dcregistry.store import LocalStore

from .io_helpers import assert_one_line_error
from .io_helpers import dcreg as _dcreg  # noqa: F401  (fixture)
from .published_helpers import catalog_text, file_server, sha256, write_dc_pt, write_kip_npz, write_mtt  # noqa: F401

PAGE = "https://github.com/example/paper"


@pytest.fixture
def dcreg(_dcreg):
    """The in-process CLI with every command family registered (published, fetch, store)."""
    from dcregistry.cli import published_cmds, store_cmds  # noqa: F401

    return _dcreg


def entry(name, fmt, files, *, method="dc", ipc=2, **extra):
    return {
        "name": name,
        "title": f"test {name}",
        "method": method,
        "dataset": "cifar10",
        "ipc": ipc,
        "format": fmt,
        "license": "MIT",
        "page": PAGE,
        "source": {"kind": "https"},
        "files": files,
        **extra,
    }


@pytest.fixture
def catalog(tmp_path, file_server, monkeypatch):
    """Files served on 127.0.0.1 and a catalog ($DCREG_PUBLISHED_CATALOG) that points at them."""
    root = file_server.root
    dc = write_dc_pt(root)
    mtt = write_mtt(root / "mtt")
    kip = write_kip_npz(root)
    url = file_server.base_url
    entries = [
        entry("dc-test", "dc-pt", [{"url": f"{url}/{dc.name}", "sha256": sha256(dc)}]),
        entry("dc-unpinned", "dc-pt", [{"url": f"{url}/{dc.name}"}]),
        entry("dc-tampered", "dc-pt", [{"url": f"{url}/{dc.name}", "sha256": "ab" * 32}]),
        entry(
            "mtt-test",
            "mtt",
            [{"url": f"{url}/mtt/{p.name}", "sha256": sha256(p)} for p in mtt],
            method="datm",
            ipc=1,
        ),
        entry(
            "kip-test", "kip-npz", [{"url": f"{url}/{kip.name}", "sha256": sha256(kip)}], method="kip", ipc=1
        ),
    ]
    path = tmp_path / "catalog.toml"
    path.write_text(catalog_text(entries))
    monkeypatch.setenv("DCREG_PUBLISHED_CATALOG", str(path))
    monkeypatch.setenv("DCREG_HOME", str(tmp_path / "home"))
    return path


# ------------------------------------------------------------------------ the shipped catalog
def test_packaged_catalog_covers_the_published_methods(monkeypatch):
    monkeypatch.delenv("DCREG_PUBLISHED_CATALOG", raising=False)
    entries = load_catalog()
    methods = {e.method for e in entries}
    assert {"dc", "dsa", "dm", "mtt", "datm", "kip"} <= methods
    assert any(e.source["kind"] == "hf" for e in entries)
    assert any(e.source["kind"] == "gdrive-folder" for e in entries)
    formats = {e.format for e in entries}
    assert {"dc-pt", "mtt", "kip-npz"} <= formats
    official = [e for e in entries if e.page == "https://github.com/VICO-UoE/DatasetCondensation"]
    assert official and all(
        e.source["url"].startswith("https://drive.google.com/drive/folders/") for e in official
    )
    # links are the publishers' own; no sha256 was invented for files never downloaded here
    for e in entries:
        assert e.page.startswith("https://") and e.source_url.startswith("https://")
        assert all(f.sha256 is None for f in e.files), e.name
        assert e.to_json()["citation"].startswith("@")


def test_published_cli_lists_and_filters(dcreg, monkeypatch):
    monkeypatch.delenv("DCREG_PUBLISHED_CATALOG", raising=False)
    r = dcreg("published", "--json", "--method", "mtt")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert rows and all(x["method"] == "mtt" for x in rows)
    assert {"name", "dataset", "ipc", "source_url", "format", "license", "citation", "files"} <= set(rows[0])
    text = dcreg("published", "--dataset", "cifar10", "--ipc", "10")
    assert text.code == 0 and "dc-cifar10-ipc10" in text.out and "mnist" not in text.out


@pytest.mark.parametrize(
    "bad,needle",
    [
        ({"page": "http://example.org/x"}, "must be https"),
        ({"name": "Bad Name"}, "'name'"),
        ({"format": "pickle"}, "format 'pickle'"),
        ({"files": [{"url": "https://e.org/a.pt", "sha256": "XYZ"}]}, "sha256 must be 64"),
        ({"files": [{"url": "ftp://e.org/a.pt"}]}, "must be https"),
        (
            {
                "source": {"kind": "gdrive-folder", "url": "https://drive.google.com/x"},
                "files": [{"path": "../etc/passwd"}],
            },
            "without '.' or '..'",
        ),
        ({"source": {"kind": "hf", "repo": "../x"}, "files": [{"path": "a.pt"}]}, "ORG/NAME"),
        ({"ipc": 0}, "ipc must be"),
        ({"extra_key": "1"}, "unknown key"),
    ],
)
def test_malformed_catalog_entries_are_refused(tmp_path, bad, needle):
    e = entry("x", "dc-pt", [{"url": "https://e.org/res.pt"}])
    e.update(bad)
    path = tmp_path / "c.toml"
    path.write_text(catalog_text([e]))
    with pytest.raises(CatalogError, match=None) as info:
        load_catalog(path)
    assert needle in str(info.value)


def test_catalog_that_is_not_toml_is_a_user_error(tmp_path, dcreg):
    path = tmp_path / "c.toml"
    path.write_text("schema = [")
    assert_one_line_error(dcreg("published", "--catalog", path), "not valid TOML")


# ---------------------------------------------------------------------------------- fetching
def test_fetch_dc_pt_one_artifact_per_experiment_with_source_recorded(catalog, dcreg, tmp_path, file_server):
    out = tmp_path / "out" / "dc"
    r = dcreg("fetch", "dc-test", "-o", out, "--push", "lab/dc-cifar10", "--json", "-q")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert [Path(a["path"]).name for a in doc["artifacts"]] == ["dc-e0", "dc-e1"]
    served = file_server.root / "res_DC_CIFAR10_ConvNet_2ipc.pt"
    for i, a in enumerate(doc["artifacts"]):
        art = open_artifact(a["path"], verify=True)
        src = art.metadata["source"]
        assert src["sha256"] == sha256(served) and src["url"].endswith(served.name)
        assert src["catalog"] == "dc-test" and src["experiment"] == i
        assert src["sha256_checked"] is True
        assert art.metadata["method"] == "dc" and art.metadata["ipc"] == 2
        assert art.metadata["method_config"]["reported_accs"] == {"ConvNet": [0.281, 0.285]}
    assert [p["name"] for p in doc["pushed"]] == ["lab/dc-cifar10-e0", "lab/dc-cifar10-e1"]
    store = LocalStore()
    assert store.resolve("lab/dc-cifar10-e1").digest == doc["artifacts"][1]["digest"]


def test_fetch_mtt_trio_and_kip_npz(catalog, dcreg, tmp_path):
    r = dcreg("fetch", "mtt-test", "-o", tmp_path / "mtt", "-q")
    assert r.code == 0, r.err
    art = open_artifact(tmp_path / "mtt")
    assert art.metadata["method"] == "datm" and "lr" in art.tensor_names
    assert float(art.numpy("lr")) == pytest.approx(0.0123)
    assert set(art.metadata["source"]["files"]) == {"images_best.pt", "labels_best.pt", "lr_best.pt"}
    r = dcreg("fetch", "kip-test", "-o", tmp_path / "kip", "-q")
    assert r.code == 0, r.err
    kip = open_artifact(tmp_path / "kip")
    assert kip.metadata["method"] == "kip" and kip.metadata["pixel_space"]["kind"] == "zca"
    assert kip.metadata["image_shape"] == [3, 32, 32]


def test_sha256_mismatch_is_refused_and_nothing_is_imported(catalog, dcreg, tmp_path):
    out = tmp_path / "out" / "bad"
    ddir = tmp_path / "downloads"
    r = dcreg("fetch", "dc-tampered", "-o", out, "--download-dir", ddir, "--push", "lab/bad", "-q")
    assert_one_line_error(r, "does not match the catalog", "nothing was imported")
    assert not out.parent.exists() or not any(out.parent.iterdir())
    assert [p.name for p in ddir.iterdir()] == [".fetch.lock"]  # the bad download is gone
    assert LocalStore().list() == []


def test_unpinned_fetch_reports_the_hash_to_pin(catalog, dcreg, tmp_path):
    r = dcreg("fetch", "dc-unpinned", "-o", tmp_path / "u", "--exp", "1", "--json", "-q")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert len(doc["artifacts"]) == 1 and doc["artifacts"][0]["experiment"] == 1
    assert doc["files"][0]["sha256_checked"] is False
    assert any("no sha256" in n and doc["files"][0]["sha256"] in n for n in doc["notes"])


def test_interrupted_download_resumes_and_completes(catalog, dcreg, tmp_path, file_server):
    name = "res_DC_CIFAR10_ConvNet_2ipc.pt"
    file_server.drop_once.add(f"/{name}")
    r = dcreg("fetch", "dc-test", "-o", tmp_path / "r", "-q")
    assert r.code == 0, r.err
    hits = [(rng, status) for path, rng, status in file_server.requests if path == f"/{name}"]
    size = (file_server.root / name).stat().st_size
    assert hits[0] == (None, 200)
    assert hits[1][1] == 206 and hits[1][0] == f"bytes={size // 2}-", hits
    assert open_artifact(tmp_path / "r-e0", verify=True)


def test_partial_file_from_an_earlier_run_is_continued(file_server, tmp_path):
    kip = write_kip_npz(file_server.root)
    url = f"{file_server.base_url}/{kip.name}"
    dest = tmp_path / kip.name
    file_server.drop_once.add(f"/{kip.name}")
    with pytest.raises(DownloadError, match="next run continues it"):
        http_download(url, dest, retries=0)
    part = dest.with_name(dest.name + ".part")
    assert part.is_file() and 0 < part.stat().st_size < kip.stat().st_size
    assert not dest.exists()
    http_download(url, dest)  # a later run
    assert dest.read_bytes() == kip.read_bytes() and not part.exists()
    assert file_server.requests[-1][1] == f"bytes={part_size(kip)}-"


def part_size(path: Path) -> int:
    return path.stat().st_size // 2


def test_oversized_or_missing_downloads_are_refused(file_server, tmp_path):
    kip = write_kip_npz(file_server.root)
    with pytest.raises(DownloadError, match="more than the 100 expected"):
        http_download(f"{file_server.base_url}/{kip.name}", tmp_path / "x", max_bytes=100)
    with pytest.raises(DownloadError, match="HTTP 404"):
        http_download(f"{file_server.base_url}/missing.npz", tmp_path / "y")
    with pytest.raises(CatalogError, match="must be https"):
        http_download("http://example.org/a.npz", tmp_path / "z")


def test_fetch_refuses_bad_names_before_downloading(catalog, dcreg, tmp_path, file_server):
    assert_one_line_error(dcreg("fetch", "dc-test", "--push", "Bad/Name", "-o", tmp_path / "x"))
    assert file_server.requests == []
    assert_one_line_error(dcreg("fetch", "dc-tset"), "did you mean dc-test")


# ------------------------------------------------------- Google Drive and Hub sources (faked)
class FakeGdown:
    """Stands in for gdown: a 'shared folder' is a local directory, file ids are paths."""

    def __init__(self, root: Path):
        self.root = root
        self.downloads: list[str] = []

    def download_folder(self, url, skip_download, quiet):
        from collections import namedtuple

        item = namedtuple("GoogleDriveFileToDownload", "id path local_path")
        return [
            item(str(p), str(p.relative_to(self.root)), None)
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        ]

    def download(self, id, output, quiet, resume, progress=None, cancel=None, timeout=None, retries=0):
        self.downloads.append(id)
        data = Path(id).read_bytes()
        with open(output, "wb") as f:
            for i in range(0, len(data), 4096):  # gdown reports progress per chunk
                f.write(data[i : i + 4096])
                if progress is not None:
                    progress(min(i + 4096, len(data)), len(data))
        return output


@pytest.fixture
def fake_drive(tmp_path, monkeypatch):
    import sys

    root = tmp_path / "drive"
    (root / "DC" / "CIFAR10" / "IPC2").mkdir(parents=True)
    write_dc_pt(root / "DC" / "CIFAR10" / "IPC2")
    write_mtt(root / "runs" / "a")
    write_mtt(root / "runs" / "b")
    fake = FakeGdown(root)
    monkeypatch.setitem(sys.modules, "gdown", fake)
    monkeypatch.setenv("DCREG_HOME", str(tmp_path / "home"))
    return fake


def drive_catalog(tmp_path, monkeypatch, entries):
    path = tmp_path / "drive.toml"
    path.write_text(catalog_text(entries))
    monkeypatch.setenv("DCREG_PUBLISHED_CATALOG", str(path))


FOLDER = {"kind": "gdrive-folder", "url": "https://drive.google.com/drive/folders/abcdefghijk"}


def test_gdrive_folder_by_path_by_name_and_needs_path(fake_drive, tmp_path, monkeypatch, dcreg):
    drive_catalog(
        tmp_path,
        monkeypatch,
        [
            entry(
                "by-path",
                "dc-pt",
                [{"path": "DC/CIFAR10/IPC2/res_DC_CIFAR10_ConvNet_2ipc.pt"}],
                source=FOLDER,
            ),
            entry("by-name", "dc-pt", [{"path": "res_DC_CIFAR10_ConvNet_2ipc.pt"}], source=FOLDER),
            entry(
                "ambiguous",
                "mtt",
                [{"path": "images_best.pt"}, {"path": "labels_best.pt"}],
                source=FOLDER,
                method="mtt",
                ipc=1,
            ),
            entry(
                "needs",
                "mtt",
                [{"path": "images_best.pt"}, {"path": "labels_best.pt"}, {"path": "lr_best.pt"}],
                source=FOLDER,
                method="datm",
                ipc=1,
                needs_path=True,
            ),
        ],
    )
    assert dcreg("fetch", "by-path", "--exp", "0", "-o", tmp_path / "p", "-q").code == 0
    assert dcreg("fetch", "by-name", "--exp", "1", "-o", tmp_path / "n", "-q").code == 0
    src = open_artifact(tmp_path / "n").metadata["source"]
    assert src["url"] == FOLDER["url"] + "#res_DC_CIFAR10_ConvNet_2ipc.pt"
    assert_one_line_error(
        dcreg("fetch", "ambiguous", "-o", tmp_path / "a"), "2 files are named images_best.pt"
    )
    assert_one_line_error(dcreg("fetch", "needs", "-o", tmp_path / "x"), "--path")
    assert_one_line_error(dcreg("fetch", "needs", "--path", "../up", "-o", tmp_path / "x"), "without '..'")
    r = dcreg("fetch", "needs", "--path", "runs/b", "-o", tmp_path / "b", "-q")
    assert r.code == 0, r.err
    assert fake_drive.downloads[-1].endswith("runs/b/lr_best.pt")
    assert "lr" in open_artifact(tmp_path / "b").tensor_names


def test_hub_source_and_datadam_layout(tmp_path, monkeypatch, dcreg):
    import torch

    served = tmp_path / "hub" / "cifar10"
    served.mkdir(parents=True)
    images = torch.randn(20, 3, 32, 32)
    torch.save(
        {"data": [images, torch.arange(10).repeat_interleave(2)]}, served / "syn_data_cifar10_ipc_2.pt"
    )
    import http.server
    import threading

    calls = []

    class Hub(http.server.BaseHTTPRequestHandler):  # the Hub's resolve endpoint, locally
        def log_message(self, *a):
            pass

        def do_GET(self):
            calls.append(self.path)
            prefix = "/datasets/uoft-dsp-lab/DataDAM/resolve/main/"
            f = tmp_path / "hub" / self.path[len(prefix) :]
            if not self.path.startswith(prefix) or not f.is_file():
                self.send_error(404)
                return
            data = f.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    monkeypatch.setenv("DCREG_HOME", str(tmp_path / "home"))
    drive_catalog(
        tmp_path,
        monkeypatch,
        [
            entry(
                "dam",
                "dc-pt",
                [{"path": "cifar10/syn_data_cifar10_ipc_2.pt"}],
                source={"kind": "hf", "repo": "uoft-dsp-lab/DataDAM"},
                method="datadam",
                citation="@misc{x, title={y}}",
            )
        ],
    )
    r = dcreg("fetch", "dam", "-o", tmp_path / "dam", "-q")
    assert r.code == 0, r.err
    httpd.shutdown()
    assert calls == ["/datasets/uoft-dsp-lab/DataDAM/resolve/main/cifar10/syn_data_cifar10_ipc_2.pt"]
    art = open_artifact(tmp_path / "dam")
    md = art.metadata
    assert md["method"] == "datadam" and md["pixel_space"]["kind"] == "normalized"
    assert md["citation"] == "@misc{x, title={y}}"
    assert md["source"]["file_name"] == "syn_data_cifar10_ipc_2.pt"
    assert md["source"]["sha256"] == sha256(served / "syn_data_cifar10_ipc_2.pt")
    assert md["source"]["url"].startswith("https://huggingface.co/datasets/uoft-dsp-lab/DataDAM/")
    assert np_allclose(art.numpy("images"), images.numpy())


def np_allclose(a, b) -> bool:
    import numpy as np

    return bool(np.allclose(a, b))


def test_a_complete_part_file_is_finished_without_refetching(file_server, tmp_path):
    kip = write_kip_npz(file_server.root)
    url = f"{file_server.base_url}/{kip.name}"
    dest = tmp_path / kip.name
    file_server.drop_once.add(f"/{kip.name}")
    with pytest.raises(DownloadError):
        http_download(url, dest, retries=0)  # leaves a part and its validator
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(kip.read_bytes())  # as if the last bytes had arrived before the crash
    http_download(url, dest)
    assert dest.read_bytes() == kip.read_bytes()
    assert [status for _, _, status in file_server.requests] == [200, 416]


def test_a_part_without_a_validator_or_of_a_changed_file_is_started_over(file_server, tmp_path):
    kip = write_kip_npz(file_server.root)
    url = f"{file_server.base_url}/{kip.name}"
    dest = tmp_path / kip.name
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(b"stale bytes of unknown origin")  # no validator: never continued
    http_download(url, dest)
    assert dest.read_bytes() == kip.read_bytes() and file_server.requests[-1][1:] == (None, 200)

    # A part whose file changed upstream: If-Range does not match, the server sends it all.
    file_server.drop_once.add(f"/{kip.name}")
    dest.unlink()
    with pytest.raises(DownloadError):
        http_download(url, dest, retries=0)
    new = kip.read_bytes()[::-1]
    kip.write_bytes(new)
    http_download(url, dest)
    assert dest.read_bytes() == new  # not old head + new tail
    assert file_server.requests[-1][2] == 200


def test_a_server_that_never_advances_is_given_up(tmp_path):
    """Every answer is a 206 of zero bytes at the offset asked for: bounded attempts, exit 1."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    hits = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                req = conn.recv(65536).decode("latin-1")
                hits.append(req.split("\r\n", 1)[0])
                rng = next(
                    (
                        ln.split(":", 1)[1].strip()
                        for ln in req.split("\r\n")
                        if ln.lower().startswith("range:")
                    ),
                    None,
                )
                start = int(rng[6:].split("-")[0]) if rng else 0
                if rng:
                    head = (
                        f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{start}/1000\r\n"
                        f'ETag: "x"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
                    )
                    conn.sendall(head.encode())
                else:
                    conn.sendall(
                        b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: "x"\r\n'
                        b"Connection: close\r\n\r\n" + b"a" * 10
                    )

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(DownloadError, match="attempt"):
            http_download(f"http://127.0.0.1:{port}/f", tmp_path / "f", retries=3, backoff=0.01)
    finally:
        srv.close()
    assert len(hits) == 4


def test_redirects_go_only_to_https_and_credentials_stay_home(tmp_path):
    from dcregistry.transfer import DownloadError as TransferError
    from dcregistry.transfer import _send, check_transfer_url

    for bad in ("http://example.org/x", "ftp://127.0.0.1/x", "file:///etc/passwd"):
        with pytest.raises(TransferError, match="only https"):
            check_transfer_url(bad)
    check_transfer_url("http://127.0.0.1:9/x")
    check_transfer_url("https://example.org/x")

    class FakeResp:
        def __init__(self, status, location=None):
            self.status_code, self.headers = status, ({"location": location} if location else {})

        def close(self):
            pass

    seen = []

    class FakeClient:
        def build_request(self, method, url, headers):
            return (url, headers)

        def send(self, req, stream):
            seen.append(req)
            url = req[0]
            if url.startswith("http://127.0.0.1:1/"):
                return FakeResp(302, "https://cdn.example.org/blob")
            return FakeResp(200)

    _send(FakeClient(), "http://127.0.0.1:1/file", {"Authorization": "Bearer canary"}, 1e18)
    assert seen[0][1]["Authorization"] == "Bearer canary"
    assert seen[1][0] == "https://cdn.example.org/blob" and "Authorization" not in seen[1][1]

    class ToHttp(FakeClient):
        def send(self, req, stream):
            return FakeResp(301, "http://evil.example.org/blob")

    with pytest.raises(TransferError, match="only https"):
        _send(ToHttp(), "http://127.0.0.1:1/file", {}, 1e18)


def test_unwritable_download_dir_is_a_user_error(catalog, dcreg, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(
        dcreg("fetch", "kip-test", "--download-dir", blocker / "sub", "-o", tmp_path / "k"),
        "cannot write downloads",
    )


def test_a_concurrent_fetch_of_the_same_set_waits_for_the_lock(catalog, tmp_path, monkeypatch):
    from filelock import FileLock

    from dcregistry.errors import UserError
    from dcregistry.published import fetch as fetch_mod
    from dcregistry.published import get_published

    ddir = tmp_path / "dl"
    ddir.mkdir()
    monkeypatch.setattr(fetch_mod, "LOCK_TIMEOUT_S", 0.2)
    with FileLock(str(ddir / ".fetch.lock")):
        with pytest.raises(UserError, match="another fetch"):
            fetch_mod.fetch_published(get_published("kip-test"), tmp_path / "k", download_dir=ddir)
    assert not (tmp_path / "k").exists()


def test_a_drive_file_larger_than_its_cap_is_refused(fake_drive, tmp_path):
    from dcregistry.published.download import gdrive_download

    src = next(p for p in sorted(fake_drive.root.rglob("*.pt")))
    with pytest.raises(DownloadError, match="more than 100 bytes"):
        gdrive_download(str(src), tmp_path / "x", max_bytes=100)
    assert not (tmp_path / "x.part").exists() and not (tmp_path / "x").exists()
