"""``striate show …`` (pictures as PNG files) and ``striate explore`` (the local web page), registered by the CLI."""
import argparse
import os
import pathlib
import sys

from striate.tools.cli import CommandError, _data_arg, _load_for_inference, _positive_int, parse_data_spec

_IMAGE_HELP = ("an image file (PNG, JPEG, ...: prepared as 'striate predict' does), or test:N for the N-th "
               "image of the test split of the data the checkpoint was trained on")

_SHOW_EPILOG = """\
examples:
  striate show features runs/lenet5-1 test:0 -o features.png      every conv/pool layer's maps for one digit
  striate show filters runs/lenet5-1 --layer c3 -o filters.png     a layer's filters as tiles
  striate show curves runs/lenet5-1 -o curves.png                  loss and accuracy per epoch
  striate show confusion runs/lenet5-1 -o confusion.png            the confusion matrix on the test split
  striate show receptive-field runs/lenet5-1 my_digit.png --layer c3 --unit 4,2,3
  striate show saliency runs/lenet5-1 test:7 -o saliency.png       which pixels the class score depends on
  striate show kernels runs/lenet5-1 test:0 -o kernels.png         Sobel, Laplacian, ... beside learned filters

CHECKPOINT is a run directory, its checkpoint.json, or a checkpoint-epochNNNN.safetensors file.
IMAGE is an image file or test:N (the N-th test image of the checkpoint's data set).
Drawing needs matplotlib: pip install 'striate[viz]'.
"""

_EXPLORE_EPILOG = """\
examples:
  striate explore runs/lenet5-1                 serve the page at http://127.0.0.1:8765/ (the URL is printed)
  striate explore runs/lenet5-1 --port 0        any free port
  striate explore runs/lenet5-1 --open          also open it in the default browser

Draw a digit with the mouse (or drop an image file) and see the class probabilities and every
layer's feature maps update; click a unit of a feature map to see its receptive field on the
input and the weighted sum that produced it, x = g(Σ x·w + b), with the real numbers.
The server listens on 127.0.0.1 only; stop it with Ctrl-C.
"""


def _output(default):
    def add(parser):
        parser.add_argument("-o", "--output", metavar="FILE.png", default=default,
                            help=f"where to write the PNG (default: {default})")
    return add


def _unit(text):
    parts = str(text).replace(" ", "").split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected CHANNEL,Y,X as three non-negative integers, such as 4,2,3; "
                                         f"got {text!r}")
    return values


def add_commands(commands, formatter=argparse.RawDescriptionHelpFormatter):
    """Add ``show`` and ``explore`` to the ``striate`` command's subparsers."""
    show = commands.add_parser(
        "show", help="draw what a model sees: feature maps, filters, curves, confusion, receptive field, saliency",
        formatter_class=formatter, epilog=_SHOW_EPILOG,
        description="Draw a picture of a trained model as a PNG file.")
    show.set_defaults(handler=_show_help(show))
    pictures = show.add_subparsers(dest="picture", metavar="PICTURE", title="pictures")

    def picture(name, help, handler, needs_image=True, default=None):
        parser = pictures.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                                     formatter_class=formatter, epilog=_SHOW_EPILOG)
        if name == "curves":
            parser.add_argument("run", metavar="RUN",
                                help="a run directory, or its metrics.json or checkpoint.json")
        else:
            parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory or checkpoint file")
        if needs_image:
            parser.add_argument("image", metavar="IMAGE", help=_IMAGE_HELP)
            parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                                help="invert dark-on-light image files (default: auto, as striate predict)")
        _output(default or f"{name}.png")(parser)
        parser.set_defaults(handler=handler)
        return parser

    features = picture("features", "the feature maps of every convolution and pooling layer for one image",
                       _show_features)
    features.add_argument("--max-channels", type=_positive_int, default=32, metavar="N",
                          help="draw at most N channels of a layer (default: 32)")
    filters = picture("filters", "the filters of a convolution layer as tiles", _show_filters, needs_image=False)
    filters.add_argument("--layer", metavar="NAME", help="the convolution, e.g. c3 (default: the first)")
    picture("curves", "loss and accuracy per epoch, training and validation", _show_curves, needs_image=False)
    confusion = picture("confusion", "the confusion matrix on a test split", _show_confusion, needs_image=False)
    confusion.add_argument("--data", type=_data_arg, metavar="DATA",
                           help="evaluate on the test split of this data set (default: the training data's)")
    confusion.add_argument("--batch-size", type=_positive_int, default=500, metavar="B",
                           help="images per forward pass (default: 500)")
    receptive = picture("receptive-field", "the receptive field of one unit as a box on the input",
                        _show_receptive_field)
    receptive.add_argument("--layer", metavar="NAME", help="a convolution or pooling layer (default: the last one)")
    receptive.add_argument("--unit", type=_unit, metavar="C,Y,X",
                           help="the unit: channel, row, column (default: the most active unit)")
    saliency = picture("saliency", "the gradient of a class score with respect to the input pixels", _show_saliency)
    saliency.add_argument("--target", type=int, metavar="K", help="the class to explain (default: the predicted one)")
    kernels = picture("kernels", "hand-made kernels (Sobel, Laplacian, ...) beside the learned first layer",
                      _show_kernels)
    kernels.add_argument("--kernels", metavar="NAMES", default="sobel_x,sobel_y,laplacian,gaussian,sharpen",
                         help="comma-separated kernel names from striate.signal.kernels.PRESETS "
                              "(default: sobel_x,sobel_y,laplacian,gaussian,sharpen)")

    explore = commands.add_parser(
        "explore", help="a local web page: draw a digit, see probabilities, feature maps and any unit's numbers",
        formatter_class=formatter, epilog=_EXPLORE_EPILOG,
        description="Serve a web page on 127.0.0.1 that runs the model live on what you draw.")
    explore.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory or checkpoint file")
    explore.add_argument("--port", type=int, default=8765, metavar="PORT",
                         help="the port to listen on (default: 8765, or a free one if it is taken; 0: any free port)")
    explore.add_argument("--open", action="store_true", help="open the page in the default web browser")
    explore.set_defaults(handler=_explore)


def _show_help(parser):
    def handler(args):
        parser.print_help(sys.stderr)
        return 2
    return handler


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError("striate show draws with matplotlib: pip install 'striate[viz]'") from None


def load_input(checkpoint, text, invert="auto"):
    """``(x (C, H, W) float32 normalised, label or None, description)`` for an image file or ``test:N``."""
    from striate.tools.cli import load_split, read_image, to_model_input
    normalize = checkpoint.meta["normalize"]
    shape = checkpoint.meta.get("input") or {"channels": 1, "height": 28, "width": 28}
    label = None
    if str(text).startswith("test:") and not os.path.exists(text):
        recorded = (checkpoint.meta.get("data") or {}).get("spec")
        if recorded is None:
            raise CommandError(f"{checkpoint.path} does not record its data set, so {text} means nothing; "
                               "give an image file")
        try:
            index = int(str(text)[5:])
        except ValueError:
            raise CommandError(f"expected test:N with N an image number, got {text!r}") from None
        images, labels, classes = load_split(parse_data_spec(recorded), train=False)
        if not 0 <= index < len(images):
            raise CommandError(f"{text}: the test split of {recorded} has images 0…{len(images) - 1}")
        image, label = images[index], int(labels[index])
        description = f"test image {index} of {recorded} (label {classes[label]})"
    else:
        try:
            image = read_image(text, shape["channels"], shape["height"], shape["width"], invert)
        except FileNotFoundError:
            raise FileNotFoundError(f"no image at {text}") from None
        except OSError as error:
            raise CommandError(f"cannot read image {text}: {error}") from None
        description = str(text)
    x = to_model_input(image[None], normalize["mean"], normalize["std"])[0]
    return x, label, description


def _wrote(path):
    print(f"wrote {path}")
    return 0


def _prepare(args):
    _matplotlib()
    checkpoint, model, _, _ = _load_for_inference(args.checkpoint)
    return checkpoint, model


def _show_features(args):
    from striate.viz.features import plot_feature_maps
    checkpoint, model = _prepare(args)
    x, _, description = load_input(checkpoint, args.image, args.invert)
    name = checkpoint.meta["model"].get("name")
    plot_feature_maps(model, x, path=args.output, max_channels=args.max_channels,
                      title=f"{name} (epoch {checkpoint.epoch}) on {description}")
    return _wrote(args.output)


def _show_filters(args):
    from striate.viz.filters import plot_filters
    _, model = _prepare(args)
    plot_filters(model, args.layer, path=args.output)
    return _wrote(args.output)


def _show_curves(args):
    from striate.viz.curves import plot_curves
    _matplotlib()
    plot_curves(args.run, path=args.output)
    return _wrote(args.output)


def _show_confusion(args):
    from striate.tools.cli import _loader, load_split
    from striate.tools.train import evaluate
    from striate.viz.confusion import plot_confusion
    checkpoint, model = _prepare(args)
    spec = args.data
    if spec is None:
        recorded = (checkpoint.meta.get("data") or {}).get("spec")
        if recorded is None:
            raise CommandError(f"{checkpoint.path} does not record its data set; pass --data")
        spec = parse_data_spec(recorded)
    images, labels, classes = load_split(spec, train=False)
    normalize = checkpoint.meta["normalize"]
    result = evaluate(model, _loader(images, labels, normalize["mean"], normalize["std"], args.batch_size),
                      num_classes=len(classes))
    plot_confusion(result, classes, path=args.output,
                   title=f"{checkpoint.meta['model'].get('name')} on the {spec.text} test split: "
                         f"accuracy {result.accuracy:.2%} ({result.count:,} images)")
    return _wrote(args.output)


def _show_receptive_field(args):
    from striate.viz.features import feature_maps
    from striate.viz.receptive import plot_receptive_field
    checkpoint, model = _prepare(args)
    x, _, _ = load_input(checkpoint, args.image, args.invert)
    layer = args.layer
    if layer is None:
        maps = feature_maps(model, x)
        if not maps:
            raise CommandError("the model has no convolution or pooling layer")
        layer = maps[-1].name
    plot_receptive_field(model, x, layer, args.unit, path=args.output)
    return _wrote(args.output)


def _show_saliency(args):
    from striate.viz.saliency import plot_saliency
    checkpoint, model = _prepare(args)
    x, _, _ = load_input(checkpoint, args.image, args.invert)
    plot_saliency(model, x, args.target, classes=checkpoint.meta.get("classes"), path=args.output)
    return _wrote(args.output)


def _show_kernels(args):
    from striate.viz.kernels import plot_kernels
    checkpoint, model = _prepare(args)
    x, _, _ = load_input(checkpoint, args.image, args.invert)
    names = tuple(name.strip() for name in args.kernels.split(",") if name.strip())
    plot_kernels(model, x, names, path=args.output)
    return _wrote(args.output)


def _explore(args):
    from striate.viz.explore.server import make_server
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be in 0…65535, got {args.port}")
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise CommandError("striate explore needs Pillow to read images: pip install 'striate[viz]'") from None
    server = make_server(args.checkpoint, port=args.port, fallback=args.port == 8765)
    url = server.url
    print(f"striate explore: serving {server.app.description} at {url}  (Ctrl-C to stop)", flush=True)
    if args.open:
        import webbrowser
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("striate explore: stopped")
    finally:
        server.server_close()
    return 0


def write_run_curves(run_dir, stream=None):
    """Write ``curves.png`` into a finished run's directory; one line about it either way (for ``striate train``)."""
    stream = sys.stdout if stream is None else stream
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("curves: not drawn (pip install 'striate[viz]' to get curves.png)", file=stream)
        return None
    from striate.viz.curves import plot_curves
    path = pathlib.Path(run_dir) / "curves.png"
    plot_curves(run_dir, path=path)
    print(f"curves: {path}", file=stream)
    return path


__all__ = ["add_commands", "load_input", "write_run_curves"]
