"""ONNX export (tools/export_onnx.py) and the onnxruntime backend (tracker/onnx_backend.py) against PyTorch."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tracking_helpers import tamed_sharp_model

onnx = pytest.importorskip("onnx", reason="the ONNX export needs onnx (pip install onnx onnxruntime)")
ort = pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs onnxruntime (pip install onnxruntime)")

CONFIG = "experiments/siammask_sharp/config_vot.json"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Weights of the tamed model, its export (through the CLI) and a 2-video synthetic VOT2018."""
    from siammask.datasets.synthetic import write_vot_dataset
    from siammask.tools import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    ckpt = str(root / "SiamMask_tiny.pth")
    torch.save(tamed_sharp_model().state_dict(), ckpt)
    out = str(root / "graphs")
    args = export_onnx.get_args_parser().parse_args(["--config", CONFIG, "--resume", ckpt, "--out", out])
    assert export_onnx.main(args) == 0
    data = str(root / "data")
    write_vot_dataset(data, name="VOT2018", num_videos=2, num_frames=16, frame_size=(200, 150), seed=3)
    return {"root": str(root), "ckpt": ckpt, "onnx": out, "data": data}


def test_export_writes_checked_graphs_and_manifest(exported: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    from siammask.tracker.onnx_backend import MANIFEST_NAME

    manifest = json.loads(Path(exported["onnx"], MANIFEST_NAME).read_text())
    assert manifest["opset"] == 17 and manifest["arch"] == "siammask_sharp"
    assert sorted(manifest["graphs"]) == ["mask", "refine", "search", "template"]
    assert all(err < 1e-3 for err in manifest["max_relative_error"].values())
    search = manifest["graphs"]["search"]
    assert [(i["name"], i["shape"]) for i in search["inputs"]] == [("zf", [1, 256, 7, 7]), ("x", [1, 3, 255, 255])]
    assert [(o["name"], o["shape"]) for o in search["outputs"]] == [
        ("cls", [1, 10, 25, 25]), ("loc", [1, 20, 25, 25]), ("corr_feature", [1, 256, 25, 25]),
        ("p0", [1, 64, 125, 125]), ("p1", [1, 256, 63, 63]), ("p2", [1, 512, 31, 31])]
    refine = manifest["graphs"]["refine"]
    assert refine["inputs"][-1] == {"name": "pos", "shape": [2], "dtype": "tensor(int64)"}
    assert refine["outputs"][0]["shape"] == [1, 16129]
    assert manifest["graphs"]["mask"]["outputs"][0]["shape"] == [1, 3969]
    # The depth-wise correlations are standard Conv nodes whose weight is computed in the graph (3 of them: cls,
    # loc, mask), not an initializer.
    graph = onnx.load(os.path.join(exported["onnx"], "search.onnx")).graph
    initializers = {i.name for i in graph.initializer}
    dynamic = [n for n in graph.node if n.op_type == "Conv" and n.input[1] not in initializers]
    assert len(dynamic) == 3
    assert all(a.i == 256 for n in dynamic for a in n.attribute if a.name == "group")


def test_backend_matches_torch_model_at_border_positions(exported: dict[str, str]) -> None:
    from siammask.tracker.onnx_backend import OnnxSharpBackend, load_onnx_backend

    model = tamed_sharp_model()
    net = load_onnx_backend(exported["onnx"], "cpu")
    assert isinstance(net, OnnxSharpBackend) and net.numpy_io
    gen = torch.Generator().manual_seed(5)
    z = torch.rand(1, 3, 127, 127, generator=gen) * 255
    x = torch.rand(1, 3, 255, 255, generator=gen) * 255
    with torch.no_grad():
        zf = model.template(z)
        out = model.track(zf, x, mask_head=True)
    zf_np = net.template(z.numpy())
    np.testing.assert_allclose(zf_np, zf.numpy(), rtol=0, atol=1e-4 * float(zf.abs().max()))
    out_np = net.track(zf.numpy(), x.numpy())
    for key in ("cls", "loc", "corr_feature"):
        np.testing.assert_allclose(out_np[key], out[key].numpy(), rtol=0, atol=1e-4 * float(out[key].abs().max()))
    for row, col in ((0, 0), (24, 24), (3, 21)):
        with torch.no_grad():
            want_refine = model.refine(out, (row, col)).numpy()
        want_head = out["mask"][:, :, row, col].numpy()  # the full head, gathered: independent of mask_at
        got_refine = net.refine(out_np, (row, col))
        got_head = net.mask_at(out_np, (row, col))
        np.testing.assert_allclose(got_refine, want_refine, rtol=0, atol=1e-4 * float(np.abs(want_refine).max()))
        np.testing.assert_allclose(got_head, want_head, rtol=0, atol=1e-4 * float(np.abs(want_head).max()))


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.mark.slow
def test_tracker_backends_agree_frame_by_frame(exported: dict[str, str]) -> None:
    """Same VOT failures, per-frame box and mask IoU >= 0.99 between the torch and onnxruntime backends."""
    from siammask.evaluation import load_vot_dataset
    from siammask.tracker import build_tracker, run_vot_sequence
    from siammask.utils.bbox import get_axis_aligned_bbox

    videos = list(load_vot_dataset("VOT2018", exported["data"]))
    trackers = {b: build_tracker(CONFIG, exported["ckpt"], "cpu", mask=True, refine=True, backend=b,
                                 onnx_dir=exported["onnx"])[0] for b in ("torch", "onnxruntime")}
    assert trackers["onnxruntime"].numpy_io and not trackers["torch"].numpy_io
    moved = 0
    for video in videos:
        runs = {b: run_vot_sequence(t, video, use_polygon=True) for b, t in trackers.items()}
        codes = {b: [r if isinstance(r, int) else -1 for r in res.regions] for b, res in runs.items()}
        assert codes["torch"] == codes["onnxruntime"]
        # The trackers' own per-frame results (no resets) on the same frames.
        frames = [cv2.imread(p) for p in video.img_paths]
        init = get_axis_aligned_bbox(np.asarray(video.gt[0], np.float64).ravel())
        states = {b: t.init_cxcywh(frames[0], init) for b, t in trackers.items()}
        for frame in frames[1:]:
            got = {b: trackers[b].track(states[b], frame) for b in trackers}
            a, b = got["torch"], got["onnxruntime"]
            assert _box_iou(a.box, b.box) >= 0.99
            assert _mask_iou(a.mask > 0.3, b.mask > 0.3) >= 0.99
            assert abs(a.score - b.score) < 1e-3
            moved += int(np.abs(a.target_pos - init[:2]).max() > 1)
    assert moved > 0  # the boxes move: the comparison is not between two constant outputs


def test_backend_refuses_missing_export_and_torch_only_flags(tmp_path: Path, exported: dict[str, str],
                                                            capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import test as test_tool
    from siammask.tracker import build_tracker
    from siammask.tracker.onnx_backend import OnnxBackendError

    base = ["--config", CONFIG, "--resume", exported["ckpt"], "--data-root", exported["data"], "--result-dir",
            str(tmp_path / "res"), "--device", "cpu", "--backend", "onnxruntime"]
    assert test_tool.main(test_tool.get_args_parser().parse_args(base)) == 2
    assert "--onnx-dir" in capsys.readouterr().err
    assert test_tool.main(test_tool.get_args_parser().parse_args(base + ["--onnx-dir", str(tmp_path)])) == 2
    err = capsys.readouterr().err
    assert "siammask_onnx.json" in err and str(tmp_path) in err and "export_onnx" in err
    with pytest.raises(OnnxBackendError, match="torch backend only"):
        build_tracker(CONFIG, exported["ckpt"], "cpu", fast=True, backend="onnxruntime", onnx_dir=exported["onnx"])


def test_test_tool_onnxruntime_backend_writes_the_torch_result_files(exported: dict[str, str],
                                                                    tmp_path: Path) -> None:
    from siammask.tools import test as test_tool

    files = {}
    for backend in ("torch", "onnxruntime"):
        args = test_tool.get_args_parser().parse_args([
            "--config", CONFIG, "--resume", exported["ckpt"], "--data-root", exported["data"], "--mask",
            "--refine", "--device", "cpu", "--result-dir", str(tmp_path / backend), "--backend", backend,
            "--onnx-dir", exported["onnx"], "--video", "vot0000"])
        assert test_tool.main(args) == 0
        [path] = list((tmp_path / backend).rglob("vot0000_001.txt"))
        files[backend] = [line.split(",") for line in path.read_text().splitlines()]
    assert [len(r) for r in files["torch"]] == [len(r) for r in files["onnxruntime"]]
    for a, b in zip(files["torch"], files["onnxruntime"]):
        if len(a) == 8:  # polygons: equal to within a pixel (float rounding of the two runtimes)
            assert np.abs(np.array(a, float) - np.array(b, float)).max() < 1.0
        else:
            assert a == b


def test_export_tool_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import export_onnx

    args = export_onnx.get_args_parser().parse_args(["--config", CONFIG, "--resume", str(tmp_path / "none.pth"),
                                                     "--out", str(tmp_path / "o")])
    assert export_onnx.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.pth" in err
