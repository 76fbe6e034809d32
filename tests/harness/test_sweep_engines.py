"""The Ray and Slurm (submitit) executors give the same per-seed numbers as the local one.

Ray runs on one local instance started once for the whole test run (the ``ray_session``
fixture, 2 CPUs and 2 *logical* GPUs, so the GPU placement logic runs without a GPU); Slurm
jobs run through submitit's local executor (``cluster="local"``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .sweep_helpers import comparable, make_store, run_sweep_in_process, write_spec

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def sweep_case(tmp_path_factory):
    """(spec, results of the local in-process reference run) over two digits sets x 2 protocols
    x 2 seeds."""
    root = tmp_path_factory.mktemp("engines")
    store, _ = make_store(root)
    spec = write_spec(root / "spec.toml", store, seeds="[0, 1]")
    run_sweep_in_process(spec, root / "local")
    return spec, root / "local"


def _run(spec, results, name, options):
    from harness.sweep.driver import run_sweep
    from harness.sweep.executor import make_executor
    from harness.sweep.plan import plan_sweep
    from harness.sweep.results import ResultsDir
    from harness.sweep.spec import load_spec

    plan = plan_sweep(load_spec(spec))
    with make_executor(name, options) as ex:
        report = run_sweep(plan, ResultsDir(results), ex)
    return report, ex


def test_ray_executor_matches_the_local_numbers(ray_session, sweep_case, tmp_path):
    from harness.sweep.executor import ExecutorOptions

    spec, local = sweep_case
    report, ex = _run(spec, tmp_path / "ray", "ray", ExecutorOptions(device="cpu"))
    assert report.failed == 0 and report.computed == len(comparable(local)) == 8
    assert ex.worker_device == "cpu" and ex.resources.num_gpus == 0
    assert comparable(tmp_path / "ray") == comparable(local)
    # the session's Ray instance is the caller's: the executor leaves it running
    assert ray_session.is_initialized()


def test_ray_places_cells_on_logical_gpus(ray_session):
    """``--per-gpu K`` asks 1/K GPU per cell; Ray hands each task its GPU through
    CUDA_VISIBLE_DEVICES (logical GPUs: the placement is Ray's, the device need not exist)."""
    import os

    from harness.sweep.executor import ExecutorError, ExecutorOptions, make_executor
    from harness.sweep.ray_executor import task_resources

    assert task_resources(ExecutorOptions(device="cuda", per_gpu=4), 2).num_gpus == 0.25
    assert task_resources(ExecutorOptions(device="auto"), 0).device == "cpu"
    assert task_resources(ExecutorOptions(device="cpu"), 2).num_gpus == 0
    with pytest.raises(ExecutorError, match="no GPUs"):
        task_resources(ExecutorOptions(device="cuda"), 0)
    with pytest.raises(ExecutorError, match="cuda, not cuda:N"):
        task_resources(ExecutorOptions(device="cuda:1"), 2)
    with make_executor("ray", ExecutorOptions(device="cuda", per_gpu=4)) as ex:
        assert ex.worker_device == "cuda" and ex.workers == 8 and "0.25 GPU per cell" in ex.describe()

    @ray_session.remote(num_gpus=0.25, num_cpus=0)
    def probe() -> tuple[list[int], str]:
        return [int(g) for g in ray_session.get_gpu_ids()], os.environ.get("CUDA_VISIBLE_DEVICES", "")

    for ids, visible in ray_session.get([probe.remote() for _ in range(8)]):
        assert len(ids) == 1 and ids[0] in (0, 1) and visible == str(ids[0])


def test_slurm_executor_runs_job_arrays_with_the_local_numbers(sweep_case, tmp_path):
    """Through the command line, as a user runs it: submitit's local mode stands in for Slurm."""
    from harness.cli import main

    spec, local = sweep_case
    res = tmp_path / "slurm"
    args = ["sweep", str(spec), "--results", str(res), "--executor", "slurm", "--slurm-cluster", "local"]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--slurm-cells-per-job", "4", "--device", "cpu", "-q"])
    assert exit_.value.code == 0
    assert comparable(res) == comparable(local)
    assert len(list(Path(f"{res}.slurm").glob("*_submitted.pkl"))) == 2  # 8 cells, 4 per array job


def test_engines_refuse_bad_setups_with_one_line():
    from harness.sweep.executor import ExecutorError, ExecutorOptions, SlurmOptions, make_executor

    with pytest.raises(ExecutorError, match="needs its options"):
        make_executor("slurm", ExecutorOptions(device="cpu"))
    with pytest.raises(ExecutorError, match="--slurm-gpus"):
        make_executor(
            "slurm", ExecutorOptions(device="cuda", slurm=SlurmOptions(folder="x", cluster="local"))
        )
    with pytest.raises(ExecutorError, match="slurm, local or debug"):
        make_executor("slurm", ExecutorOptions(device="cpu", slurm=SlurmOptions(folder="x", cluster="pbs")))
