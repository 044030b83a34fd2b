"""``striate explore``: a local web page that runs a trained model live on what the visitor draws or drops.

``server.make_server(checkpoint)`` returns a ``ThreadingHTTPServer`` bound to 127.0.0.1 that
serves the page (``static/``: plain HTML, JavaScript and CSS, no build step) and a small JSON
API; all inference runs in Python through striate (``app.ExploreApp``):

- ``GET  /api/model``   the model: name, classes, input shape, layers;
- ``POST /api/predict`` an image (a canvas PNG data URL in JSON, or an uploaded file's bytes)
  → class probabilities, the prepared input, and every conv/pool layer's feature maps as
  small PNGs with their shapes and colour scale;
- ``POST /api/unit``    a unit (layer, channel, y, x) of the prepared input → its receptive
  field on the input and the weighted sum that produced it, ``x = g(Σ x·w + b)``, with the
  window values, the weights, the bias, the sum and the activation.

Bad input (an empty canvas, a file that is not an image, an image too large in bytes or
pixels) is answered with status 400 or 413 and ``{"error": message}``, which the page shows;
the server keeps serving.
"""
