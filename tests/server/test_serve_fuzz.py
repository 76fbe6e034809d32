"""Schemathesis fuzzes `dcreg serve` from its own OpenAPI schema (bounded for CI): no request,
valid or malformed, with or without the token, gets a 5xx or changes the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcregistry.store.hub import HubStore

from .conftest import Server, store_state

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = 6
TAG_OPS = (
    "POST /api/datasets/{ns}/{name}/tag/{rev}",
    "DELETE /api/datasets/{ns}/{name}/tag/{tag}",
    "POST /api/repos/create",
)


def _fuzz(op, base_url: str, headers: dict, fixed: dict, failures: list) -> None:
    strategies = [
        op.as_strategy(generation_mode=mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    if "{ns}" in op.path:  # half the cases aim at the real repo, so handlers get past lookups
        strategies += [op.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=fixed)]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def run(case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        if response.status_code >= 500:
            failures.append(
                f"{op.label}: {response.status_code} for {case.path_parameters} "
                f"{case.query} {str(case.body)[:200]}: {response.text[:300]}"
            )

    run()


def test_fuzz_the_openapi_schema(server: Server, client_env: Path, make_artifact) -> None:
    art = make_artifact(seed=30)
    HubStore(server.url).push(art.path, "lab/fz", tags=["keep"])
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 15
    fixed = {"ns": "lab", "name": "fz", "rev": "v1"}
    before = store_state(server.home)
    failures: list[str] = []
    for op in ops:  # no token: every write must be refused, reads must not fail
        _fuzz(op, server.url, {}, fixed, failures)
    assert store_state(server.home) == before
    auth = {"Authorization": f"Bearer {server.token}"}
    for op in ops:  # with the token: malformed writes are 4xx and change nothing
        if op.label not in TAG_OPS:
            _fuzz(op, server.url, auth, fixed, failures)
    assert store_state(server.home) == before
    for op in ops:  # tag/repo writes may legitimately succeed: only no 5xx
        if op.label in TAG_OPS:
            _fuzz(op, server.url, auth, fixed, failures)
    before = store_state(server.home)
    for op in ops:  # every body route, oversized: declared and chunked, with and without the token
        if op.method.upper() in ("POST", "PUT", "PATCH"):
            for headers in ({}, auth):
                _oversized(op, server.url, headers, failures)
    assert store_state(server.home) == before
    assert not failures, "\n".join(failures[:10])
    assert HubStore(server.url).pull("lab/fz@v1", client_env / "after").is_dir()


def _oversized(op, base_url: str, headers: dict, failures: list) -> None:
    """The operation with a body just past its route's limit, declared and chunked: 413/401/4xx."""
    import httpx

    from dcregistry.server.guard import route_of

    values = {
        "ns": "lab",
        "name": "fz",
        "rev": "main",
        "tag": "keep",
        "oid": "ab" * 32,
        "size": "10",
        "path": "README.md",
    }
    path = op.path
    for k, v in values.items():
        path = path.replace("{" + k + "}", v).replace("{" + k + ":path}", v)
    limit, _ = route_of(op.method.upper(), path)
    size = min(limit, 64 << 20) + 1
    body = b'{"pad": "' + b"x" * size + b'"}'
    for chunked in (False, True):
        content = (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)) if chunked else body
        try:
            r = httpx.request(
                op.method.upper(),
                base_url + path,
                content=content,
                timeout=30,
                headers={**headers, "Content-Type": "application/json"},
            )
        except httpx.TransportError:
            continue  # the server answered and closed while the client was still sending: fine
        if r.status_code >= 500 or r.status_code < 400:
            failures.append(
                f"{op.label} oversized ({'chunked' if chunked else 'declared'}): "
                f"{r.status_code} {r.text[:200]}"
            )
