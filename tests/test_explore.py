"""`striate explore`: the JSON API on a live server, bad input, and the page end to end in headless Chromium."""
import base64
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest

from striate.data.datasets import Digits
from striate.tools.cli import main, to_model_input

Image = pytest.importorskip("PIL.Image", reason="the explorer reads images with Pillow (pip install 'striate[viz]')")
pytest.importorskip("matplotlib", reason="striate.viz needs matplotlib (pip install 'striate[viz]')")
from striate.viz.explore.app import ExploreApp, centre_digit  # noqa: E402
from striate.viz.explore.server import make_server  # noqa: E402

# The README's screenshot script draws and browses exactly as these tests do.
from scripts.explore_screenshot import CHROMIUM_ARGS, THREE as STROKES, draw  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LIMIT_BYTES, LIMIT_PIXELS = 300_000, 2_000_000


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """LeNet-5 trained for one epoch on 300 of the embedded digits (a few seconds)."""
    out = tmp_path_factory.mktemp("explore-run")
    assert main(["train", "--subset", "300", "--epochs", "1", "--batch-size", "30", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(tiny_run):
    server = make_server(tiny_run, port=0, max_image_bytes=LIMIT_BYTES, max_pixels=LIMIT_PIXELS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(server, path, body=None, content_type="application/json"):
    """``(status, decoded JSON or text)`` of one request to the server."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    headers = {} if data is None else {"Content-Type": content_type}
    try:
        with urllib.request.urlopen(urllib.request.Request(server.url.rstrip("/") + path, data, headers),
                                    timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, (json.loads(raw) if kind.startswith("application/json") else raw.decode())


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(numpy.asarray(array, dtype=numpy.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(array):
    return "data:image/png;base64," + base64.b64encode(png_bytes(array)).decode()


def huge_png_header(width, height):
    """A small PNG file that claims ``width × height`` pixels (with one row of data): only the header is honest."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b""))


# The first half of a real PNG: its header is fine, its pixel data stops short.
TRUNCATED = png_bytes(numpy.random.default_rng(0).integers(0, 256, (120, 120)))[:3000]


@pytest.fixture(scope="module")
def test_digits():
    digits = Digits(train=False)
    return digits.data, digits.targets


def drawing_of(digit, size=280):
    """A test digit as a big canvas drawing, shifted off centre (as people draw)."""
    canvas = numpy.zeros((size, size), numpy.uint8)
    big = numpy.asarray(Image.fromarray(digit).resize((size // 2, size // 2), Image.Resampling.NEAREST))
    canvas[20:20 + size // 2, 100:100 + size // 2] = big
    return canvas


# ----- the JSON API --------------------------------------------------------------------------------

def test_server_listens_on_localhost_and_serves_the_page(server):
    assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    status, page = request(server, "/")
    assert status == 200 and '<canvas id="canvas"' in page and "/static/app.js" in page
    assert request(server, "/static/app.js")[0] == 200 and request(server, "/static/style.css")[0] == 200
    for path in ("/static/../checkpoint.json", "/static/server.py", "/nothing"):
        status, answer = request(server, path)
        assert status == 404 and "no such page" in answer["error"]


def test_model_info(server):
    status, info = request(server, "/api/model")
    assert status == 200
    assert info["model"] == "lenet5" and info["epoch"] == 1 and len(info["classes"]) == 10
    assert info["input"] == {"channels": 1, "height": 28, "width": 28, "foreground": "light on dark"}
    assert [(layer["name"], layer["shape"]) for layer in info["layers"]] == [
        ("features.c1", [6, 28, 28]), ("features.s2", [6, 14, 14]), ("features.c3", [16, 10, 10]),
        ("features.s4", [16, 5, 5])]
    assert info["limits"] == {"image_bytes": LIMIT_BYTES, "pixels": LIMIT_PIXELS}


def test_predict_a_file_prepares_it_as_striate_predict_does(server, tiny_run, test_digits, tmp_path, capsys):
    images, labels = test_digits
    path = tmp_path / "digit.png"
    path.write_bytes(png_bytes(images[5]))
    status, answer = request(server, "/api/predict?source=file", path.read_bytes(), "image/png")
    assert status == 200, answer
    numpy.testing.assert_array_equal(answer["input"]["pixels"], images[5])      # 28×28 light on dark: unchanged
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-6)
    assert main(["predict", str(tiny_run), str(path), "--json", "--top-k", "10"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"][0]["top_k"]
    for entry in predicted:
        assert answer["probabilities"][entry["class"]] == pytest.approx(entry["probability"], rel=1e-5, abs=1e-7)
    assert answer["prediction"] == predicted[0]["class"]


def test_predict_returns_every_layer_as_images(server, tiny_run, test_digits):
    images, _ = test_digits
    status, answer = request(server, "/api/predict", {"image": data_url(drawing_of(images[0])), "source": "canvas"})
    assert status == 200, answer
    assert [(layer["label"], layer["shape"], len(layer["channels"])) for layer in answer["layers"]] == [
        ("c1 + relu1", [6, 28, 28], 6), ("s2", [6, 14, 14], 6), ("c3 + relu3", [16, 10, 10], 16),
        ("s4", [16, 5, 5], 16)]
    pixels = numpy.array(answer["input"]["pixels"], dtype=numpy.uint8)
    # The probabilities are the model's on the prepared input (recomputed here without the server).
    from striate.viz.features import feature_maps
    from striate.viz.saliency import class_scores
    app = ExploreApp(tiny_run)
    x = to_model_input(pixels[None], app.mean, app.std)[0]
    scores = class_scores(app.model, x)
    expected = numpy.exp(scores - scores.max()) / numpy.exp(scores - scores.max()).sum()
    numpy.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-5, atol=1e-7)
    maps = feature_maps(app.model, x)
    for layer, fmap in zip(answer["layers"], maps):
        assert layer["min"] == pytest.approx(float(fmap.values.min())) and layer["max"] == pytest.approx(
            float(fmap.values.max()))
        header, encoded = layer["channels"][1].split(",", 1)
        assert header == "data:image/png;base64"
        image = numpy.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
        assert image.shape == (*fmap.values.shape[1:], 3)
        # The brightest unit of the channel is drawn with the brightest colour used in it.
        brightness = image.astype(int).sum(axis=2)
        assert brightness[numpy.unravel_index(fmap.values[1].argmax(), fmap.values[1].shape)] == brightness.max()


def test_a_drawing_is_centred_and_scaled_like_mnist():
    drawing = numpy.zeros((200, 300), numpy.uint8)
    drawing[10:70, 250:262] = 255                                       # a "1" in the top right corner
    prepared = centre_digit(drawing, 28, 28)
    rows, cols = numpy.nonzero(prepared > 40)
    assert rows.max() - rows.min() + 1 in (19, 20, 21)                  # the longest side fills the 20-pixel box
    mass = prepared.astype(float)
    cy = (mass.sum(axis=1) * numpy.arange(28)).sum() / mass.sum()
    cx = (mass.sum(axis=0) * numpy.arange(28)).sum() / mass.sum()
    assert abs(cy - 13.5) <= 0.6 and abs(cx - 13.5) <= 0.6             # centre of mass at the centre
    with pytest.raises(ValueError, match="the canvas is empty"):
        centre_digit(numpy.zeros((50, 50), numpy.uint8), 28, 28)


def test_unit_answers_with_the_real_numbers(server, test_digits):
    images, _ = test_digits
    _, answer = request(server, "/api/predict", {"image": data_url(images[7]), "source": "file"})
    pixels = answer["input"]["pixels"]
    status, unit = request(server, "/api/unit", {"pixels": pixels, "layer": "features.c3", "channel": 4,
                                                 "y": 3, "x": 6})
    assert status == 200, unit
    assert unit["bounds"] == [[4, 17], [10, 23]] and unit["box"] == [[4, 17], [10, 23]]
    assert unit["field"] == {"rf": [14, 14], "jump": [2, 2]} and unit["input_size"] == [28, 28]
    window, weights = numpy.array(unit["window"]), numpy.array(unit["weights"])
    assert window.shape == weights.shape == (6, 5, 5)
    total = float((window * weights).sum()) + unit["bias"]
    assert unit["weighted_sum"] == pytest.approx(total, rel=1e-9, abs=1e-12)
    assert unit["value"] == pytest.approx(max(total, 0.0), abs=1e-12) and unit["activation"] == "ReLU"
    assert unit["model_value"] == pytest.approx(unit["value"], rel=1e-5, abs=1e-5)
    status, pooled = request(server, "/api/unit", {"pixels": pixels, "layer": "features.s2", "channel": 0,
                                                   "y": 0, "x": 0})
    assert status == 200 and pooled["kind"] == "max" and pooled["weights"] is None
    assert pooled["value"] == pytest.approx(max(v for row in pooled["window"][0] for v in row))


@pytest.mark.parametrize("body, message", [
    ({"pixels": [[0] * 28] * 28, "layer": "features.c9", "channel": 0, "y": 0, "x": 0}, "no layer 'features.c9'"),
    ({"pixels": [[0] * 28] * 28, "layer": "features.c3", "channel": 16, "y": 0, "x": 0}, "outside layer features.c3"),
    ({"pixels": [[0] * 28] * 28, "layer": "features.c3", "channel": 0, "y": 0, "x": -1}, "outside layer"),
    ({"pixels": [[0] * 27] * 28, "layer": "features.c3", "channel": 0, "y": 0, "x": 0}, "must have shape (28, 28)"),
    ({"pixels": [[999] * 28] * 28, "layer": "features.c3", "channel": 0, "y": 0, "x": 0}, "numbers in 0…255"),
    ({"pixels": [[0] * 28] * 28, "layer": "features.c3", "channel": "a", "y": 0, "x": 0}, "must be integers"),
    ({"layer": "features.c3"}, "missing pixels, channel, y, x"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_unit_requests(server, body, message):
    status, answer = request(server, "/api/unit", body)
    assert status == 400 and message in answer["error"], answer


@pytest.mark.parametrize("body, content_type, status, message", [
    ({"image": data_url(numpy.zeros((280, 280))), "source": "canvas"}, "application/json", 400,
     "the canvas is empty: draw a digit first"),
    ({"image": data_url(numpy.full((50, 50), 255)), "source": "file"}, "application/json", 400, "the image is blank"),
    ({"image": "data:text/plain;base64," + base64.b64encode(b"hello").decode()}, "application/json", 400,
     "not an image striate can read"),
    (b"%PDF-1.4 not an image", "application/octet-stream", 400, "not an image striate can read"),
    (b"", "image/png", 400, "the file is empty"),
    (huge_png_header(2_000, 1_500), "image/png", 413, "2,000×1,500 = 3,000,000 pixels; the limit is 2,000,000"),
    (huge_png_header(40_000, 30_000), "image/png", 413, "the image is too large (Pillow refuses over"),
    (b"\x00" * (LIMIT_BYTES + 1), "image/png", 413, "the limit is"),
    ({"image": "data:image/png;base64,@@@"}, "application/json", 400, "not valid base64"),
    (TRUNCATED, "image/png", 400, "damaged or truncated"),
    ({"image": "data:image/png;base64," + base64.b64encode(TRUNCATED).decode(), "source": "canvas"},
     "application/json", 400, "damaged or truncated"),
    ({"image": 42}, "application/json", 400, "expected the image as a data URL"),
    ({"picture": "x"}, "application/json", 400, "expected a JSON object with an 'image' data URL"),
    ({"image": data_url(numpy.eye(28) * 255), "source": "camera"}, "application/json", 400, "source must be"),
    (b"{not json", "application/json", 400, "not valid JSON"),
])
def test_bad_images_get_a_message_and_the_server_keeps_serving(server, body, content_type, status, message):
    path = "/api/predict" if content_type == "application/json" else "/api/predict?source=file"
    code, answer = request(server, path, body, content_type)
    assert code == status and message in answer["error"], answer
    assert request(server, "/api/model")[0] == 200


def test_an_upload_over_the_body_limit_is_refused_and_drained(server):
    body = json.dumps({"image": "data:image/png;base64," + "A" * (server.max_body_bytes + 10)}).encode()
    code, answer = request(server, "/api/predict", body)
    assert code == 413 and "the limit is" in answer["error"]
    assert request(server, "/api/model")[0] == 200


def test_requests_at_the_same_time_get_the_same_answers(server, test_digits):
    images, _ = test_digits
    body = {"image": data_url(images[3]), "source": "file"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: request(server, "/api/predict", body), range(12)))
    assert all(code == 200 for code, _ in answers)
    first = answers[0][1]
    for _, answer in answers[1:]:
        assert answer["probabilities"] == first["probabilities"] and answer["layers"] == first["layers"]


def test_make_server_falls_back_to_a_free_port_only_when_asked(tiny_run):
    app = ExploreApp(tiny_run)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            make_server(app, port=port)
        other = make_server(app, port=port, fallback=True)
        assert other.server_address[1] not in (port, 0)
        other.server_close()


def test_striate_explore_command_prints_the_url_and_stops_on_ctrl_c(tiny_run):
    # The child gets Ctrl-C's default action whatever this process inherited: a test run started in the
    # background of a non-interactive shell (`bash .ci/run &`) ignores SIGINT, children inherit that, and
    # Python then never turns SIGINT into KeyboardInterrupt. PYTHONFAULTHANDLER: if it still does not
    # stop, SIGABRT makes it print every thread's stack (below).
    process = subprocess.Popen([sys.executable, "-m", "striate", "explore", str(tiny_run), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = process.stdout.readline()
        assert "serving lenet5 (epoch 1" in line and "http://127.0.0.1:" in line, line + process.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "api/model", timeout=30) as response:
            assert json.loads(response.read())["model"] == "lenet5"
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            out, err = process.communicate(timeout=30)
            pytest.fail(f"striate explore did not stop within 60 s of SIGINT; stdout {out!r}; "
                        f"its threads:\n{err[-6000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in out


# ----- the page in a real browser ------------------------------------------------------------------

def _browser_or_skip():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    return sync_playwright


def test_the_page_end_to_end_in_chromium(server, tmp_path):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(server.url)
            page.wait_for_function("document.getElementById('model-description').textContent.includes('lenet5')")

            # An empty canvas: the server's message is shown on the page.
            page.click("#classify")
            page.wait_for_selector("#message:not([hidden])")
            assert "the canvas is empty" in page.text_content("#message")

            # Draw a stroke with the mouse: the prediction appears and the message goes.
            draw(page, STROKES)
            page.wait_for_function("document.querySelectorAll('#probabilities li').length === 10")
            page.wait_for_function("document.getElementById('message').hidden")
            page.wait_for_function("!document.getElementById('input-image').hidden")
            page.wait_for_function("!state.inFlight && !state.dirty")     # the whole drawing's prediction
            shown = page.locator("#probabilities .probability").all_text_contents()
            assert len(shown) == 10 and all(text.endswith("%") for text in shown)
            assert abs(sum(float(text.rstrip("%")) for text in shown) / 100 - 1) <= 0.01
            assert page.text_content("#prediction").startswith(": ")

            # Every layer's feature maps are there, one loaded image per channel.
            layers = page.locator("#layers .layer")
            assert layers.count() == 4
            for index, channels in enumerate((6, 6, 16, 16)):
                images = layers.nth(index).locator("img.fmap")
                assert images.count() == channels
            page.wait_for_function("[...document.querySelectorAll('img.fmap')].every(i => i.complete && "
                                   "i.naturalWidth > 0)")
            widths = page.eval_on_selector_all("img.fmap", "images => images.map(i => i.naturalWidth)")
            assert widths[:6] == [28] * 6 and widths[-1] == 5

            # Click a unit of c3: its receptive-field box and the weighted sum appear.
            tile = page.locator(".layer[data-layer='features.c3'] img.fmap").nth(5)
            size = tile.bounding_box()
            tile.click(position={"x": 6.5 * size["width"] / 10, "y": 3.5 * size["height"] / 10})   # unit (3, 6)
            page.wait_for_selector("#rf-box:not([hidden])")
            page.wait_for_selector("#unit-tables table")
            assert page.text_content("#unit-title") == "c3 + relu3, channel 5, unit (y = 3, x = 6)"
            assert "rows 4…17, columns 10…23 (14×14 pixels" in page.text_content("#unit-field")
            formula = page.text_content("#unit-formula")
            assert formula.startswith("x = ReLU(Σ x·w + b)") and "Σ x·w + b = " in formula
            assert page.locator("#unit-tables table").count() == 12      # 6 input channels: windows and weights
            assert page.locator(".unit-marker").count() == 1
            image = page.locator("#input-image").bounding_box()
            box = page.locator("#rf-box").bounding_box()
            assert box["width"] == pytest.approx(14 / 28 * image["width"], abs=2)
            assert box["x"] - image["x"] == pytest.approx(10 / 28 * image["width"], abs=2)
            page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)

            # A file that is not an image, and one far too large: a message each; the page still works.
            page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                                  "buffer": b"just some text"}])
            page.wait_for_function("document.getElementById('message').textContent.includes('not an image')")
            page.set_input_files("#file", files=[{"name": "huge.png", "mimeType": "image/png",
                                                  "buffer": huge_png_header(50_000, 50_000)}])
            page.wait_for_function("document.getElementById('message').textContent.includes('the limit is 2,000,000')")
            page.set_input_files("#file", files=[{"name": "big.png", "mimeType": "image/png",
                                                  "buffer": b"\x00" * (LIMIT_BYTES + 1)}])
            page.wait_for_function("document.getElementById('message').textContent.includes('MiB')")
            page.click("#clear")
            draw(page, STROKES[:1])
            page.wait_for_function("document.getElementById('message').hidden")
            page.wait_for_function("document.querySelectorAll('#probabilities li').length === 10")
            assert errors == []
        finally:
            browser.close()
    assert (tmp_path / "explore.png").read_bytes()[:4] == b"\x89PNG"
