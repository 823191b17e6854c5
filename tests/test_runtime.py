"""utils.runtime: device choice (availability mocked), backends, AMP dtypes and scalers, a real 2-process gloo run."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from unittest import mock

import pytest
import torch

from siammask.utils import runtime
from siammask.utils.runtime import Runtime, RuntimeSetupError, init_runtime, resolve_device_type


def _mock(npu: bool, cuda: bool):
    return mock.patch.multiple(runtime, npu_available=mock.Mock(return_value=npu),
                               cuda_available=mock.Mock(return_value=cuda))


@pytest.mark.parametrize("npu, cuda, expected", [
    (True, True, "npu"), (True, False, "npu"), (False, True, "cuda"), (False, False, "cpu")])
def test_auto_prefers_npu_then_cuda_then_cpu(npu: bool, cuda: bool, expected: str) -> None:
    with _mock(npu, cuda):
        assert resolve_device_type("auto") == expected


def test_explicit_device_unavailable_is_one_line_error() -> None:
    with _mock(False, False):
        with pytest.raises(RuntimeSetupError, match="torch_npu"):
            resolve_device_type("npu")
        with pytest.raises(RuntimeSetupError, match="CUDA"):
            resolve_device_type("cuda")
        assert resolve_device_type("cpu") == "cpu"
    with pytest.raises(RuntimeSetupError, match="unknown device"):
        resolve_device_type("tpu")


def test_npu_check_never_imports_torch_npu_when_absent() -> None:
    with mock.patch("importlib.util.find_spec", return_value=None), \
            mock.patch("importlib.import_module") as imp:
        assert runtime.npu_available() is False
        imp.assert_not_called()


def test_npu_check_imports_torch_npu_when_present() -> None:
    fake_npu = mock.Mock(is_available=mock.Mock(return_value=True), device_count=mock.Mock(return_value=8))
    with mock.patch("importlib.util.find_spec", return_value=object()), \
            mock.patch("importlib.import_module") as imp, mock.patch.object(torch, "npu", fake_npu, create=True):
        assert runtime.npu_available() is True
        imp.assert_called_once_with("torch_npu")


@pytest.mark.parametrize("dev, backend", [("npu", "hccl"), ("cuda", "nccl"), ("cpu", "gloo")])
def test_backend_per_device(dev: str, backend: str) -> None:
    assert runtime.BACKENDS[dev] == backend


def test_distributed_env_picks_backend_and_local_rank_device() -> None:
    """Under torchrun on a (mocked) NPU node: hccl, device index from LOCAL_RANK (not RANK), process group made.

    Runs in a subprocess that registers the 'npu' device name the way torch_npu does, so torch.device('npu:3') exists.
    """
    code = textwrap.dedent("""
        from unittest import mock
        import torch
        from siammask.utils import runtime
        torch.utils.rename_privateuse1_backend("npu")
        fake_npu = mock.Mock(device_count=mock.Mock(return_value=8))
        env = {"WORLD_SIZE": "16", "RANK": "11", "LOCAL_RANK": "3", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "1"}
        with mock.patch.object(runtime, "npu_available", return_value=True), \\
                mock.patch.object(torch, "npu", fake_npu, create=True), \\
                mock.patch("torch.distributed.init_process_group") as init, \\
                mock.patch("torch.distributed.is_initialized", return_value=False):
            rt = runtime.init_runtime("auto", env=env)
        init.assert_called_once_with(backend="hccl", rank=11, world_size=16)
        fake_npu.set_device.assert_called_once_with(3)
        print(rt.rank, rt.local_rank, rt.world_size, rt.backend, rt.device, rt.is_main)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["11", "3", "16", "hccl", "npu:3", "False"]


def test_cuda_local_rank_beyond_devices_is_clear_error() -> None:
    with _mock(False, True), mock.patch("torch.cuda.device_count", return_value=2):
        with pytest.raises(RuntimeSetupError, match="LOCAL_RANK=2"):
            init_runtime("auto", env={"LOCAL_RANK": "2"})


def test_single_process_needs_no_torchrun() -> None:
    rt = init_runtime("cpu", env={})
    assert (rt.rank, rt.world_size, rt.distributed, rt.is_main) == (0, 1, False, True)


def test_world_size_without_master_is_clear_error() -> None:
    with pytest.raises(RuntimeSetupError, match="MASTER_ADDR"):
        init_runtime("cpu", env={"WORLD_SIZE": "2", "RANK": "0"})


@pytest.mark.parametrize("dev, dtype", [("cpu", torch.bfloat16), ("cuda", torch.float16), ("npu", torch.float16)])
def test_amp_dtype_per_device(dev: str, dtype: torch.dtype) -> None:
    assert runtime.amp_dtype_for(dev) == dtype


def test_cpu_autocast_runs_matmul_in_bf16_and_scaler_is_off() -> None:
    rt = Runtime(device=torch.device("cpu"), amp_dtype=torch.bfloat16)
    a = torch.randn(4, 4)
    with rt.autocast():
        assert (a @ a).dtype == torch.bfloat16
    assert (a @ a).dtype == torch.float32
    assert not rt.make_scaler().is_enabled()
    assert Runtime(device=torch.device("cpu")).autocast().__class__.__name__ == "nullcontext"


def test_static_loss_scale_never_changes() -> None:
    """--loss-scale 128: an overflow skips the step but keeps the scale (apex static scaling)."""
    scaler = runtime.StaticGradScaler("cpu", 128.0)
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    loss = (w * torch.tensor([1.0, float("inf")])).sum()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 128.0
    assert torch.equal(w.detach(), torch.ones(2))  # step skipped
    rt = Runtime(device=torch.device("cpu"), amp_dtype=torch.float16, loss_scale=128.0)
    assert isinstance(rt.make_scaler(), runtime.StaticGradScaler)


def test_seed_everything_repeats_draws() -> None:
    import random

    import numpy as np

    runtime.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.seed_everything(7)
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_all_reduce(tmp_path) -> None:
    """A real 2-process run through init_runtime: gloo backend, all_reduce sums the ranks' tensors."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent("""
        import sys, torch, torch.distributed as dist
        from siammask.utils.runtime import init_runtime, cleanup
        rt = init_runtime("cpu")
        t = torch.tensor([float(rt.rank + 1), 10.0])
        dist.all_reduce(t)
        print(f"rank {rt.rank} backend {rt.backend} world {rt.world_size} sum {t.tolist()}")
        cleanup(rt)
    """))
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    for rank, (out, _) in enumerate(outs):
        assert f"rank {rank} backend gloo world 2 sum [3.0, 20.0]" in out
