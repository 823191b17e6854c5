"""The annotation server over real HTTP on localhost: CVAT's two forms, demo parity, concurrency, hostile requests.

An in-process uvicorn server (a free port, a thread) serves a small sharp model; tools/demo.py runs on the same
JPEG files and weights, and the server must answer its polygons exactly. One test starts tools/serve.py as a
process (token, log lines, SIGTERM). Every request has a timeout; nothing waits unbounded.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import pytest
import torch
from tracking_helpers import tamed_sharp_model

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "experiments" / "siammask_sharp" / "config_davis.json")
BASE_CONFIG = str(ROOT / "experiments" / "siammask_base" / "config.json")
FRAMES = 11  # init + 10 tracked
BOX = (29, 50, 32, 20)  # x, y, w, h of the ellipse on frame 0
BOX2 = (100, 20, 26, 26)
TIMEOUT = 60


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)
    out = []
    for i in range(FRAMES):
        im = base.copy()
        cv2.ellipse(im, (45 + 3 * i, 60), (16, 10), 0, 0, 360, (30, 200, 240), -1)
        cv2.rectangle(im, (100, 20 + 2 * i), (125, 45 + 2 * i), (200, 40, 40), -1)
        out.append(im)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _corners(box: tuple[float, ...]) -> list[float]:
    x, y, w, h = box
    return [float(x), float(y), float(x + w), float(y + h)]


def request(url: str, payload: Any = None, *, raw: Optional[bytes] = None, method: str = "POST",
            headers: Optional[dict[str, str]] = None, timeout: float = TIMEOUT) -> tuple[int, Any]:
    """One HTTP request -> (status, decoded JSON body)."""
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                         **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("serve")
    folder = root / "frames"
    folder.mkdir()
    images = []
    for i, im in enumerate(_frames()):
        path = folder / f"{i:05d}.jpg"
        cv2.imwrite(str(path), im)
        images.append(base64.b64encode(path.read_bytes()).decode("ascii"))
    ckpt = str(root / "sharp.pth")
    torch.save(tamed_sharp_model().state_dict(), ckpt)
    return {"root": root, "folder": str(folder), "images": images, "ckpt": ckpt}


def _demo(setup: dict[str, Any], name: str, boxes: list[tuple[float, ...]], frames: int) -> dict[str, Any]:
    from siammask.tools import demo

    out = setup["root"] / name
    argv = ["--resume", setup["ckpt"], "--config", CONFIG, "--no-display", "--device", "cpu", "--input",
            setup["folder"], "--output", str(out), "--max-frames", str(frames)]
    for b in boxes:
        argv += ["--init", ",".join(str(v) for v in b)]
    assert demo.main(demo.get_args_parser().parse_args(argv)) == 0
    return json.loads((out / "tracks.json").read_text())


@pytest.fixture(scope="module")
def demo_one(setup: dict[str, Any]) -> dict[str, Any]:
    return _demo(setup, "demo_one", [BOX], FRAMES)


@pytest.fixture(scope="module")
def server(setup: dict[str, Any]) -> Any:
    import uvicorn

    from siammask.serving import Limits, build_handler
    from siammask.serving.app import create_app

    handler = build_handler(CONFIG, setup["ckpt"], "cpu",
                            limits=Limits(max_body_bytes=2 << 20, max_image_pixels=1_000_000, max_targets=8))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(handler, workers=4), host="127.0.0.1", port=port,
                                        log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield {"url": url, "handler": handler}
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def init_one(server: dict[str, Any], setup: dict[str, Any]) -> dict[str, Any]:
    status, body = request(server["url"] + "/", {"image": setup["images"][0], "shape": _corners(BOX),
                                                 "state": None})
    assert status == 200, body
    return body


def test_health_is_200_with_the_models_fingerprint(server: dict[str, Any]) -> None:
    status, body = request(server["url"] + "/health", method="GET")
    assert status == 200 and body["status"] == "ok"
    assert body["fingerprint"] == server["handler"].tracker.fingerprint and len(body["fingerprint"]) == 16
    assert body["template"] == [1, 256, 7, 7]


def test_init_and_10_frames_through_state_round_trips_equal_demo(server: dict[str, Any], setup: dict[str, Any],
                                                                 demo_one: dict[str, Any],
                                                                 init_one: dict[str, Any]) -> None:
    assert init_one["shape"] == _corners(BOX)  # CVAT's SiamMask function echoes the init shape
    assert init_one["score"] == 1.0 and init_one["lost"] is False
    state = init_one["state"]
    assert state["fingerprint"] == server["handler"].tracker.fingerprint
    assert set(state) == {"version", "target_pos", "target_sz", "avg_chans", "im_h", "im_w", "score", "lost",
                          "frames", "zf", "fingerprint"}
    polygons = []
    for f in range(1, FRAMES):
        state = json.loads(json.dumps(state))  # the client holds it as plain JSON
        status, body = request(server["url"] + "/", {"image": setup["images"][f], "shape": None, "state": state})
        assert status == 200, body
        expected = demo_one["frames"][f]["objects"][0]
        assert body["shape"] == np.asarray(expected["polygon"], np.float64).ravel().tolist(), f
        assert len(body["shape"]) == 8
        assert body["score"] == expected["score"] and body["lost"] == expected["lost"]
        assert body["state"]["frames"] == f
        state = body["state"]
        polygons.append(body["shape"])
    assert len({tuple(p) for p in polygons}) > 3, "the polygons should move with the object"


def test_list_form_two_targets_equals_demo_and_accepts_a_new_target(server: dict[str, Any], setup: dict[str, Any]
                                                                    ) -> None:
    demo_two = _demo(setup, "demo_two", [BOX, BOX2], 3)
    url = server["url"] + "/"
    status, body = request(url, {"image": setup["images"][0], "shapes": [_corners(BOX), _corners(BOX2)],
                                 "states": []})
    assert status == 200, body
    assert set(body) == {"shapes", "states", "scores", "lost"}
    assert body["shapes"] == [_corners(BOX), _corners(BOX2)] and body["scores"] == [1.0, 1.0]
    states = body["states"]
    for f in range(1, 3):
        status, body = request(url, {"image": setup["images"][f], "shapes": body["shapes"], "states": states})
        assert status == 200, body
        for k in range(2):
            expected = demo_two["frames"][f]["objects"][k]
            assert body["shapes"][k] == np.asarray(expected["polygon"], np.float64).ravel().tolist(), (f, k)
            assert body["scores"][k] == expected["score"]
        states = body["states"]
    # A third object drawn on frame 3: `states` one shorter than `shapes` (CVAT's rule: the missing ones are new).
    new_box = [60.0, 10.0, 90.0, 40.0]
    status, body = request(url, {"image": setup["images"][3], "shapes": body["shapes"] + [new_box],
                                 "states": states})
    assert status == 200, body
    assert len(body["shapes"]) == 3 and body["shapes"][2] == new_box and len(body["shapes"][0]) == 8
    assert body["states"][2]["frames"] == 0 and body["states"][0]["frames"] == 3


def test_mask_output_bitmap_and_rle_match_the_trackers_mask(server: dict[str, Any], setup: dict[str, Any],
                                                            init_one: dict[str, Any]) -> None:
    from siammask.tracker import TargetState

    url = server["url"] + "/"
    status, bitmap = request(url, {"image": setup["images"][1], "shape": None, "state": init_one["state"],
                                   "mask": True})
    assert status == 200, bitmap
    status, rle = request(url, {"image": setup["images"][1], "shape": None, "state": init_one["state"],
                                "mask": "rle"})
    assert status == 200, rle
    handler = server["handler"]
    frame = cv2.imread(os.path.join(setup["folder"], "00001.jpg"))
    res = handler.tracker.track(TargetState.from_dict(init_one["state"]), frame)
    binary = (res.mask > handler.seg_thr).astype(np.uint8)
    ys, xs = np.nonzero(binary)
    box = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    assert bitmap["mask"][-4:] == box and rle["mask"][-4:] == box
    crop = binary[box[1]:box[3] + 1, box[0]:box[2] + 1]
    assert bitmap["mask"][:-4] == crop.ravel().tolist()
    counts = rle["mask"][:-4]  # runs alternate 0, 1, 0, ... starting with zeros
    decoded = np.concatenate([np.full(n, k % 2, np.uint8) for k, n in enumerate(counts)])
    assert decoded.tolist() == crop.ravel().tolist()
    assert bitmap["shape"] == rle["shape"] == [float(v) for v in res.polygon.ravel()]


def test_eight_concurrent_clients_get_the_same_answers(server: dict[str, Any], setup: dict[str, Any],
                                                       demo_one: dict[str, Any], init_one: dict[str, Any]) -> None:
    expected = np.asarray(demo_one["frames"][1]["objects"][0]["polygon"], np.float64).ravel().tolist()
    payload = {"image": setup["images"][1], "shape": None, "state": init_one["state"]}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: request(server["url"] + "/", payload), range(8)))
    assert [status for status, _ in answers] == [200] * 8
    assert all(body["shape"] == expected for _, body in answers)


def _hostile_cases(setup: dict[str, Any], state: dict[str, Any]) -> list[tuple[str, Any, int]]:
    """(name, payload or raw bytes, expected status) of requests the server must refuse."""
    image = setup["images"][1]
    good_shape = _corners(BOX)
    zf = state["zf"]
    bomb = base64.b64encode(cv2.imencode(".png", np.zeros((1000, 1001, 3), np.uint8))[1].tobytes()).decode()
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    header_bomb = png[:16] + (100000).to_bytes(4, "big") + (100000).to_bytes(4, "big") + png[24:]
    jsonpickle_state = {k: json.dumps({"py/reduce": [{"py/function": "os.system"},
                                                     {"py/tuple": [f"touch {setup['root'] / 'pwned'}"]}]})
                        for k in ("target_pos", "target_sz", "net.zf")}
    nan_floats = base64.b64encode(np.full(256 * 49, np.nan, np.float32).tobytes()).decode()

    def with_state(**change: Any) -> dict[str, Any]:
        return {"image": image, "shape": None, "state": {**state, **change}}

    return [
        ("not json", b"this is not json", 400),
        ("pickle", b"\x80\x04\x95" + b"cos\nsystem\n(S'touch pwned'\ntR.", 400),
        ("json list", [1, 2, 3], 400),
        ("NaN literal", f'{{"image": "{image}", "shape": [NaN, 1, 20, 20], "state": null}}'.encode(), 400),
        ("Infinity", f'{{"image": "{image}", "shape": [0, 1, Infinity, 20], "state": null}}'.encode(), 400),
        ("1e999", f'{{"image": "{image}", "shape": [0, 1, 1e999, 20], "state": null}}'.encode(), 400),
        ("deep nesting", b"[" * 100000 + b"]" * 100000, 400),
        ("missing image", {"shape": good_shape, "state": None}, 400),
        ("image not base64", {"image": "@@@@", "shape": good_shape, "state": None}, 400),
        ("image not a picture", {"image": base64.b64encode(b"GIF89a....").decode(), "shape": good_shape}, 400),
        ("image a number", {"image": 7, "shape": good_shape}, 400),
        ("decompression bomb", {"image": bomb, "shape": good_shape}, 413),
        ("header bomb", {"image": base64.b64encode(header_bomb).decode(), "shape": good_shape}, 413),
        ("truncated png", {"image": base64.b64encode(png[:40]).decode(), "shape": good_shape}, 400),
        ("shape 3 numbers", {"image": image, "shape": [1, 2, 3]}, 400),
        ("shape strings", {"image": image, "shape": ["1", "2", "30", "40"]}, 400),
        ("shape booleans", {"image": image, "shape": [True, 2, 30, 40]}, 400),
        ("shape inverted", {"image": image, "shape": [30, 40, 1, 2]}, 400),
        ("shape outside", {"image": image, "shape": [500, 500, 600, 600]}, 400),
        ("shape huge", {"image": image, "shape": [0, 0, 1e9, 1e9]}, 400),
        ("shape object", {"image": image, "shape": {"x": 1}}, 400),
        ("mixed forms", {"image": image, "shape": good_shape, "shapes": [good_shape]}, 400),
        ("unknown key", {"image": image, "shape": good_shape, "exec": "rm -rf /"}, 400),
        ("bad mask flag", {"image": image, "shape": good_shape, "mask": "png"}, 400),
        ("states longer", {"image": image, "shapes": [good_shape], "states": [None, None]}, 400),
        ("too many targets", {"image": image, "shapes": [good_shape] * 9, "states": []}, 413),
        ("shapes not a list", {"image": image, "shapes": "all", "states": []}, 400),
        ("state a string", {"image": image, "shape": None, "state": json.dumps(state)}, 400),
        ("jsonpickle state", {"image": image, "shape": None, "state": jsonpickle_state}, 400),
        ("state a list", {"image": image, "shape": None, "state": [1, 2]}, 400),
        ("extra state key", with_state(net="x"), 400),
        ("missing state key", {"image": image, "state": {k: v for k, v in state.items() if k != "avg_chans"}}, 400),
        ("version 2", with_state(version=2), 400),
        ("version true", with_state(version=True), 400),
        ("target_pos 3", with_state(target_pos=[1.0, 2.0, 3.0]), 400),
        ("target_sz huge", with_state(target_sz=[1e12, 1e12]), 400),
        ("target_pos far", with_state(target_pos=[1e9, 5.0]), 400),
        ("im_h bool", with_state(im_h=True), 400),
        ("im_w other frame", with_state(im_w=320), 400),
        ("score 2", with_state(score=2.0), 400),
        ("lost string", with_state(lost="yes"), 400),
        ("avg_chans 300", with_state(avg_chans=[300.0, 1.0, 1.0]), 400),
        ("zf shape", with_state(zf={**zf, "shape": [1, 256, 7, 8]}), 400),
        ("zf short", with_state(zf={**zf, "float32_base64": zf["float32_base64"][:-8]}), 400),
        ("zf not base64", with_state(zf={**zf, "float32_base64": "!" * len(zf["float32_base64"])}), 400),
        ("zf NaN", with_state(zf={**zf, "float32_base64": nan_floats}), 400),
        ("zf extra key", with_state(zf={**zf, "dtype": "float64"}), 400),
        ("fingerprint other", with_state(fingerprint="0123456789abcdef"), 400),
        ("fingerprint number", with_state(fingerprint=5), 400),
        ("no fingerprint", {"image": image, "state": {k: v for k, v in state.items() if k != "fingerprint"}}, 400),
        ("body too large", {"image": "A" * (3 << 20), "shape": good_shape}, 413),
    ]


def test_hostile_requests_are_4xx_json_errors_and_the_server_still_answers(
        server: dict[str, Any], setup: dict[str, Any], init_one: dict[str, Any]) -> None:
    url = server["url"] + "/"
    for name, payload, expected in _hostile_cases(setup, init_one["state"]):
        raw = payload if isinstance(payload, bytes) else None
        status, body = request(url, None if raw is not None else payload, raw=raw)
        assert status == expected, (name, status, body)
        assert set(body) == {"error"} and isinstance(body["error"], str), name
        assert "\n" not in body["error"] and 0 < len(body["error"]) < 400, name
    assert not (setup["root"] / "pwned").exists() and not Path("pwned").exists()  # nothing was executed
    # A chunked body (no Content-Length) over the limit is cut off while reading.
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1].rstrip("/")), timeout=TIMEOUT)
    conn.request("POST", "/", body=iter([b"x" * (1 << 20)] * 3), encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and "limit" in json.loads(resp.read())["error"]
    conn.close()
    for method, path, code in (("GET", "/", 405), ("POST", "/nothing", 404), ("GET", "/health/x", 404)):
        status, body = request(server["url"] + path, {} if method == "POST" else None, method=method)
        assert status == code and "error" in body, (method, path)
    status, body = request(url, {"image": setup["images"][0], "shape": _corners(BOX), "state": None})
    assert status == 200 and body["shape"] == _corners(BOX)
    status, _ = request(server["url"] + "/health", method="GET")
    assert status == 200


def test_error_messages_name_the_problem(server: dict[str, Any], setup: dict[str, Any],
                                         init_one: dict[str, Any]) -> None:
    url = server["url"] + "/"
    state = init_one["state"]
    cases = [({"image": setup["images"][1], "state": {**state, "zf": {**state["zf"], "shape": [1, 256, 7, 8]}}},
              "state.zf.shape must be [1, 256, 7, 7]"),
             ({"image": setup["images"][1], "state": json.dumps(state)}, "jsonpickle/pickle states are not accepted"),
             ({"image": setup["images"][1], "state": {**state, "extra": 1}}, "unknown key 'extra'"),
             ({"image": setup["images"][1], "state": {**state, "im_w": 320}},
              "initialised on a 320x120 frame, this image is 160x120"),
             ({"image": setup["images"][1], "shapes": [[0, 0, 1]], "states": []}, "shapes[0] must be 4")]
    for payload, message in cases:
        status, body = request(url, payload)
        assert status == 400 and message in body["error"], body


def test_state_of_another_model_config_is_refused(server: dict[str, Any], setup: dict[str, Any]) -> None:
    """A state made by the base model (another config and weights, same template shape) is refused by name."""
    from siammask.models import build_model
    from siammask.tracker import TargetState, build_tracker

    torch.manual_seed(1)
    ckpt = str(setup["root"] / "base.pth")
    torch.save(build_model(BASE_CONFIG).state_dict(), ckpt)
    other, _, _ = build_tracker(BASE_CONFIG, ckpt, "cpu")
    frame = cv2.imread(os.path.join(setup["folder"], "00000.jpg"))
    state = other.init(frame, BOX)
    assert tuple(state.zf.shape) == (1, 256, 7, 7) and state.fingerprint != server["handler"].tracker.fingerprint
    status, body = request(server["url"] + "/", {"image": setup["images"][1], "state": state.to_dict()})
    assert status == 400
    assert "made by another model, config or weights" in body["error"] and state.fingerprint in body["error"]
    # The library refuses it too: the sharp tracker will not track the base model's state.
    from siammask.tracker import TrackerStateError

    with pytest.raises(TrackerStateError, match="another model or weights"):
        server["handler"].tracker.track(TargetState.from_dict(state.to_dict()), frame)


def test_nuclio_main_wraps_the_same_handler(server: dict[str, Any], setup: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import types

    spec = importlib.util.spec_from_file_location("nuclio_main", ROOT / "serverless" / "nuclio" / "main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)

    class Response:
        def __init__(self, body: str, headers: dict, content_type: str, status_code: int) -> None:
            self.body, self.content_type, self.status_code = body, content_type, status_code

    logger = types.SimpleNamespace(info=lambda *a: None, warn=lambda *a: None)
    context = types.SimpleNamespace(user_data=types.SimpleNamespace(), Response=Response, logger=logger)
    monkeypatch.setenv("SIAMMASK_CONFIG", CONFIG)
    monkeypatch.setenv("SIAMMASK_WEIGHTS", setup["ckpt"])
    monkeypatch.setenv("SIAMMASK_DEVICE", "cpu")
    main.init_context(context)
    assert context.user_data.model_handler.spec == server["handler"].spec  # same model, same fingerprint
    # nuclio decodes a JSON body into a dict (CVAT sends application/json); raw bytes work too.
    event = types.SimpleNamespace(body={"image": setup["images"][0], "shapes": [_corners(BOX)], "states": []})
    resp = main.handler(context, event)
    assert resp.status_code == 200 and resp.content_type == "application/json"
    assert json.loads(resp.body)["shapes"] == [_corners(BOX)]
    resp = main.handler(context, types.SimpleNamespace(body=b'{"image": 1, "shape": [1, 2, 30, 40]}'))
    assert resp.status_code == 400 and "base64" in json.loads(resp.body)["error"]


def test_serve_cli_token_logs_and_sigterm(setup: dict[str, Any]) -> None:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SIAMMASK_SERVE_TOKEN": "s3cret", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "serve.py"), "--config", CONFIG, "--resume",
                             setup["ckpt"], "--port", str(port), "--device", "cpu", "--workers", "1"],
                            cwd=setup["root"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if request(url + "/health", method="GET", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "tools/serve.py did not come up"
            time.sleep(0.2)
        payload = {"image": setup["images"][0], "shape": _corners(BOX), "state": None}
        status, body = request(url + "/", payload)
        assert status == 401 and "Bearer" in body["error"]
        assert request(url + "/", payload, headers={"Authorization": "Bearer wrong"})[0] == 401
        status, body = request(url + "/", payload, headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and body["shape"] == _corners(BOX)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 143, err  # the project's SIGTERM status, after uvicorn's graceful shutdown
    lines = [line for line in err.splitlines() if "siammask.serve" in line]
    assert any("POST / 401" in line for line in lines) and any("POST / 200" in line for line in lines), err
    assert any("GET /health 200" in line for line in lines)
    assert setup["images"][0][:40] not in err  # the image never reaches the log


def test_serve_cli_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None\n"
            "from siammask.tools import serve\n"
            "sys.exit(serve.main(serve.get_args_parser().parse_args(['--resume', 'none.pth'])))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("error: the annotation server needs starlette: pip install "
                                                     "'siammask[serve]' (or: pip install starlette uvicorn)")


def test_rle_and_bitmap_encodings_by_hand() -> None:
    from siammask.serving.protocol import encode_mask, image_size, rle_counts

    assert rle_counts(np.array([0, 0, 1, 1, 1, 0])) == [2, 3, 1]
    assert rle_counts(np.array([1, 1, 0])) == [0, 2, 1]  # CVAT's RLE starts with a (here empty) run of zeros
    mask = np.full((5, 6), -1.0, np.float32)
    mask[1, 2], mask[2, 3], mask[2, 2] = 0.9, 0.8, 0.2  # 0.2 is below the 0.3 threshold
    assert encode_mask(mask, 0.3, "bitmap") == [1, 0, 0, 1] + [2, 1, 3, 2]  # crop rows 1-2, cols 2-3, then box
    assert encode_mask(mask, 0.3, "rle") == [0, 1, 2, 1] + [2, 1, 3, 2]
    assert encode_mask(np.zeros((4, 4), np.float32), 0.3, "rle") is None and encode_mask(None, 0.3, "rle") is None
    im = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg"):
        assert image_size(cv2.imencode(ext, im)[1].tobytes()) == (53, 37)



def test_frames_decode_as_cv2_imread_decodes_the_file(tmp_path: Path) -> None:
    """PNG, JPEG and a JPEG with an EXIF rotation: the server's pixels are cv2.imread's (BGR, rotated alike)."""
    import io

    from PIL import Image

    from siammask.serving.protocol import Limits, RequestError, decode_image

    rng = np.random.default_rng(3)
    im = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)
    pil = Image.fromarray(im[:, :, ::-1])
    exif = pil.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif.tobytes())
    files = {"a.png": cv2.imencode(".png", im)[1].tobytes(), "b.jpg": cv2.imencode(".jpg", im)[1].tobytes(),
             "exif.jpg": buf.getvalue()}
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
        decoded = decode_image(base64.b64encode(raw).decode(), Limits())
        assert np.array_equal(decoded, cv2.imread(str(tmp_path / name))), name
    assert decode_image(base64.b64encode(files["exif.jpg"]).decode(), Limits()).shape == (40, 20, 3)
    with pytest.raises(RequestError, match="800 pixels, the limit is 799") as info:
        decode_image(base64.b64encode(files["a.png"]).decode(), Limits(max_image_pixels=799))
    assert info.value.status == 413
