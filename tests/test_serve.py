"""jaxvision.serve: predictions equal the in-process predictor, nothing compiles once ready,
a full queue refuses while accepted requests complete, and malformed payloads get their 4xx
while the server stays up."""

import io
import json
import struct
import threading
import time
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from jaxvision import export  # noqa: E402
from jaxvision.serve import Batcher, QueueFull, ServeConfig, bucket_sizes, create_app  # noqa: E402

from helpers import small_predictor  # noqa: E402


@pytest.fixture(scope="module")
def predictor():
    return small_predictor(class_names=[f"c{i}" for i in range(10)])


@pytest.fixture(scope="module")
def serving(predictor):
    return export.serving_model(predictor)


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bucket_sizes_step_by_at_most_one_and_a_half_up_to_the_maximum():
    assert bucket_sizes(32) == (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
    assert bucket_sizes(20) == (1, 2, 3, 4, 6, 8, 12, 16, 20)
    assert bucket_sizes(1) == (1,)
    for max_batch in range(1, 300):
        sizes = bucket_sizes(max_batch)
        assert sizes[0] == 1 and sizes[-1] == max_batch and list(sizes) == sorted(set(sizes))
        assert all(b <= max(1.5 * a, a + 1) for a, b in zip(sizes, sizes[1:]))
    with pytest.raises(ValueError):
        bucket_sizes(0)


def test_served_predictions_equal_the_predictor_and_nothing_compiles_once_ready(
        predictor, serving, compile_counter):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    # Any batch size and image size (resized by the spec's rule).
    batches = [rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)
               for n, size in ((3, (16, 16)), (8, (20, 12)), (13, (16, 16)))]
    expected = [predictor(image)[0]] + [predictor(images) for images in batches]
    with TestClient(create_app(serving, ServeConfig(max_batch=8))) as client:
        assert client.get("/readyz").json()["buckets"] == [1, 2, 3, 4, 6, 8]
        compiled = compile_counter.count
        answer = client.post("/v1/predict", content=png(image),
                             headers={"content-type": "image/png"}).json()["predictions"][0]
        np.testing.assert_allclose(answer["probabilities"], expected[0], atol=1e-5)
        top = expected[0].argmax()
        assert answer["class"] == top and answer["class_name"] == f"c{top}"
        for images, probs in zip(batches, expected[1:]):
            answer = client.post("/v1/predict", json={"instances": images.tolist()}).json()
            got = np.array([p["probabilities"] for p in answer["predictions"]])
            np.testing.assert_allclose(got, probs, atol=1e-5)
        assert compile_counter.count == compiled
        metrics = client.get("/metrics").text
        assert 'jaxvision_requests_total{status="200"} 4' in metrics
        assert "jaxvision_request_seconds_bucket" in metrics and "jaxvision_queue_depth 0" in metrics


def test_int8_weights_serve_the_same_answers_from_a_quarter_of_the_bytes(predictor):
    """In-process int8 weight-only serving: weights' bytes near a quarter, probabilities close
    to float serving, and top-1 equal except where float's top two nearly tie (random
    weights; the trained digits model's >= 99% agreement is in test_export)."""
    served = export.serving_model(predictor, int8_weights=True)
    reference = export.serving_model(predictor)
    assert served.description["weights"] == "int8 per output channel"
    assert export.quantize.nbytes(served.variables) < 0.3 * export.quantize.nbytes(reference.variables)
    images = np.random.default_rng(1).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    expected = np.asarray(reference.apply(reference.variables, images))
    with TestClient(create_app(served, ServeConfig(max_batch=64))) as client:
        answer = client.post("/v1/predict", json={"instances": images.tolist()}).json()
    got = np.array([p["probabilities"] for p in answer["predictions"]])
    np.testing.assert_allclose(got, expected, atol=0.06)
    top_two = np.sort(expected, axis=1)[:, -2:]
    flipped = got.argmax(1) != expected.argmax(1)
    assert flipped.mean() <= 0.05 and (top_two[flipped, 1] - top_two[flipped, 0] < 0.12).all()


def test_a_full_queue_refuses_and_every_accepted_request_completes(serving):
    batcher = Batcher(serving.apply, serving.variables, serving.input_shape, max_batch=4,
                      max_queue=6)
    batcher.compile()  # the worker is not running yet: requests pile up
    results, finished = {}, threading.Event()
    images = np.random.default_rng(1).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)

    def done(i):
        def record(result, error):
            results[i] = (result, error)
            if len(results) == 4:
                finished.set()
        return record

    for i, k in enumerate((1, 2, 2, 1)):
        batcher.submit_nowait(images[:k], done(i))
    with pytest.raises(QueueFull, match="6 images are queued"):
        batcher.submit_nowait(images[:1], done(99))
    batcher.start()
    assert finished.wait(60)
    batcher.stop()
    assert all(error is None for _, error in results.values())
    assert [len(r) for r, _ in (results[i] for i in range(4))] == [1, 2, 2, 1]
    np.testing.assert_allclose(results[1][0], np.asarray(serving(images[:2])), atol=1e-6)
    with pytest.raises(QueueFull, match="shutting down"):
        batcher.submit_nowait(images[:1], done(100))


def test_the_wait_for_a_fuller_batch_counts_from_the_first_request_s_arrival(serving):
    """A request that has waited ``max_wait_s`` already (queued while the model ran) goes at
    once; a fresh one waits for company. The worker is not started: ``_take`` alone."""
    images = np.random.default_rng(2).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    batcher = Batcher(serving.apply, serving.variables, serving.input_shape, max_batch=2,
                      max_wait_s=5.0)
    batcher.submit_nowait(images[:1], lambda *_: None)
    batcher._queue.queue[0].arrived -= 10  # it arrived ten seconds ago
    start = time.monotonic()
    assert len(batcher._take()) == 1 and time.monotonic() - start < 2.5
    batcher.submit_nowait(images[:1], lambda *_: None)
    later = threading.Timer(0.2, batcher.submit_nowait, (images[1:], lambda *_: None))
    later.start()
    assert len(batcher._take()) == 2  # the second joined the first's batch
    later.join()


def huge_png(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header declares ``width x height`` (a decompression bomb)."""
    data = bytearray(png(np.zeros((1, 1, 3), np.uint8)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def test_malformed_payloads_get_their_4xx_and_the_server_stays_up(serving):
    good = png(np.full((16, 16, 3), 128, np.uint8))
    nan_json = '{"instances": [[[NaN, 0, 0]]]}'
    cases = [
        ("truncated PNG", good[: len(good) // 2], "image/png", 400),
        ("zero-byte body", b"", "image/png", 400),
        ("20,000 x 20,000 declared image", huge_png(20000, 20000), "image/png", 400),
        ("wrong content type", good, "text/plain", 415),
        ("JSON with NaN", nan_json.encode(), "application/json", 422),
        ("wrong rank", json.dumps([[1, 2, 3]]).encode(), "application/json", 422),
        ("wrong channels", json.dumps([[[1, 2]]]).encode(), "application/json", 422),
        ("out-of-range pixels", json.dumps([[[300, 0, 0]]]).encode(), "application/json", 422),
        ("100 MB body", b"\0" * (100 * 2**20), "image/png", 413),
    ]
    with TestClient(create_app(serving, ServeConfig(max_batch=4))) as client:
        for name, body, content_type, status in cases:
            response = client.post("/v1/predict", content=body,
                                   headers={"content-type": content_type})
            assert response.status_code == status, (name, response.text)
            assert response.json()["error"], name
            ok = client.post("/v1/predict", content=good, headers={"content-type": "image/png"})
            assert ok.status_code == 200, f"after {name}: {ok.text}"
        assert client.get("/healthz").status_code == 200


def test_an_api_key_is_required_when_set(serving):
    with TestClient(create_app(serving, ServeConfig(max_batch=1, api_key="s3cret"))) as client:
        body = png(np.zeros((16, 16, 3), np.uint8))
        assert client.post("/v1/predict", content=body,
                           headers={"content-type": "image/png"}).status_code == 401
        assert client.post("/v1/predict", content=body, headers={
            "content-type": "image/png", "x-api-key": "s3cret"}).status_code == 200


def test_bad_serve_configs_are_refused():
    with pytest.raises(ValueError, match="max_batch"):
        ServeConfig(max_batch=0)
    with pytest.raises(ValueError, match="timeout_s"):
        ServeConfig(timeout_s=0)


@pytest.mark.slow
def test_sigterm_answers_every_accepted_request_then_exits(tfds_dir, tmp_path):
    """``python -m jaxvision.serve`` on a trained run answers as ``inference.load`` does;
    requests queued when SIGTERM arrives all get their 200, then the process exits."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from experiments import quickstart
    from jaxvision import train

    config = quickstart.get_config()
    config.data_dir, config.num_epochs = tfds_dir, 1
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(config, workdir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "jaxvision.serve", "--workdir", workdir, "--port", str(port),
         "--max-wait-ms", "5000"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("the server never became ready")
        # The served answer is inference.load's, for an image of another size too.
        from jaxvision import inference

        digit = np.random.default_rng(0).integers(0, 256, (12, 10), dtype=np.uint8)
        served = httpx.post(url + "/v1/predict", content=png(digit), timeout=60,
                            headers={"content-type": "image/png"}).json()["predictions"][0]
        np.testing.assert_allclose(served["probabilities"],
                                   inference.load(workdir)(digit[..., None])[0], atol=1e-5)
        body = png(np.zeros((8, 8, 1), np.uint8)[..., 0])

        def send(_):
            try:
                return httpx.post(url + "/v1/predict", content=body,
                                  headers={"content-type": "image/png"}, timeout=60).status_code
            except httpx.HTTPError as e:
                return type(e).__name__

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(send, i) for i in range(16)]
            # All 16 accepted and queued (the batcher waits up to 5 s for 32 images) ...
            deadline = time.monotonic() + 60
            while "jaxvision_queue_depth 16" not in httpx.get(url + "/metrics").text:
                assert time.monotonic() < deadline, "the requests never reached the queue"
                time.sleep(0.05)
            server.send_signal(signal.SIGTERM)  # ... when the server is told to stop
            statuses = [f.result() for f in futures]
        assert statuses == [200] * 16
        assert server.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        server.kill()
        output = server.communicate()[0]
    assert "Shutting down" in output or "Finished server process" in output, output[-2000:]


@pytest.mark.slow
def test_the_serving_benchmark_runs_and_loses_nothing(capsys, monkeypatch):
    """``benchmarks/serve.py --quick``: every request of every level answered with 200; in the
    burst past the queue each request gets its 200 or its 503."""
    import importlib
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parents[1] / "benchmarks"))
    importlib.import_module("serve").main(["--quick"])  # the servers' processes import it too
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    levels = [line for line in lines if "max_batch" in line]
    assert {(line["max_batch"], line["concurrency"]) for line in levels} == {
        (32, 1), (32, 8), (1, 1), (1, 8)}
    assert all(line["failed"] == 0 and line["lost"] == 0 and line["requests_per_s"] > 0
               for line in levels)
    assert next(line for line in lines if "dynamic_batching_ratio" in line)["concurrency"] == 8
    burst = lines[-1]  # whether any is refused depends on timing; refusal has its own test
    assert burst["ok"] > 0 and burst["other"] == 0 and burst["lost"] == 0
    assert burst["ok"] + burst["refused_503"] == burst["burst"]
