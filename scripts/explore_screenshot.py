"""Take the README's screenshot of ``striate explore``: draw a digit in headless Chromium, click a unit, save a PNG.

    python scripts/explore_screenshot.py runs/lenet5-default docs/images/explore.png

Starts the explorer's server on a free port of 127.0.0.1 in this process, opens the page in
Debian's Chromium (``/usr/bin/chromium``, or ``--chromium PATH``) driven by Playwright for
Python (``pip install playwright``; its own browser download is not needed), draws a "3" with
the mouse, waits for the prediction, clicks one unit of the second convolution's feature
maps, and saves a screenshot of the whole page.
"""
import argparse
import pathlib
import sys
import threading

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# A "3" as two arcs, in canvas fractions: each stroke a list of (x, y).
THREE = [
    [(0.30, 0.22), (0.42, 0.15), (0.58, 0.15), (0.68, 0.24), (0.66, 0.38), (0.52, 0.46), (0.42, 0.47)],
    [(0.52, 0.47), (0.66, 0.54), (0.70, 0.68), (0.62, 0.80), (0.46, 0.85), (0.32, 0.80)],
]


def draw(page, strokes, steps=6):
    """Draw ``strokes`` (lists of canvas-fraction points) on the page's canvas with the mouse."""
    box = page.locator("#canvas").bounding_box()
    for stroke in strokes:
        points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=steps)
        page.mouse.up()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run directory or checkpoint file")
    parser.add_argument("output", help="the PNG to write, e.g. docs/images/explore.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    parser.add_argument("--layer", default="c3", help="the layer whose unit is clicked (default: c3)")
    args = parser.parse_args(argv)

    import numpy
    from playwright.sync_api import sync_playwright

    from striate.viz.explore.server import make_server
    from striate.viz.features import feature_maps, find_map
    server = make_server(args.checkpoint, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
            page.goto(server.url)
            page.wait_for_function("document.getElementById('model-description').textContent.includes('epoch')")
            draw(page, THREE)
            page.wait_for_selector("#probabilities li")
            page.wait_for_function("!document.getElementById('input-image').hidden")
            page.wait_for_function("!state.inFlight && !state.dirty")     # the whole drawing's prediction
            # Click the layer's most active unit: find it from the prepared input the page holds.
            pixels = numpy.array(page.evaluate("state.result.input.pixels"), dtype=numpy.uint8)
            fmap = find_map(feature_maps(server.app.model, server.app._model_input(pixels)), args.layer)
            channel, y, x = numpy.unravel_index(int(numpy.argmax(fmap.values)), fmap.values.shape)
            height, width = fmap.values.shape[1:]
            tile = page.locator(f".layer[data-layer='{fmap.name}'] img.fmap").nth(int(channel))
            size = tile.bounding_box()
            tile.click(position={"x": (x + 0.5) * size["width"] / width, "y": (y + 0.5) * size["height"] / height})
            page.wait_for_selector("#rf-box:not([hidden])")
            page.wait_for_selector("#unit-tables table")
            prediction = page.locator("#prediction").text_content()
            pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.output, full_page=True)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"wrote {args.output} (prediction{prediction})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
