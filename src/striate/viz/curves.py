"""Training curves: loss and accuracy per epoch, on the training and the validation data, from a run's metrics.

``striate train`` (``striate.tools.train.fit`` with a checkpoint) writes ``metrics.json`` into
the run directory: a list of per-epoch records ``{"epoch", "loss", "accuracy", "val_loss",
"val_accuracy", ...}``; ``checkpoint.json`` carries the same list as ``history``.

    plot_curves("runs/lenet5-20250101-120000", path="curves.png")
"""
import json
import math
import pathlib

import numpy

from striate.errors import FormatError
from striate.viz._common import finish, new_figure

SERIES = ("loss", "accuracy", "val_loss", "val_accuracy")


def read_history(source):
    """The per-epoch records of a run: from its directory, its ``metrics.json`` or its ``checkpoint.json``.

    Raises:
        FileNotFoundError: nothing to read there.
        FormatError: the file is not JSON, or not a list of per-epoch records.
    """
    path = pathlib.Path(source)
    if path.is_dir():
        candidates = [path / "metrics.json", path / "checkpoint.json"]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"no metrics.json or checkpoint.json in {source}")
    elif not path.exists():
        raise FileNotFoundError(f"no metrics file at {source}")
    try:
        value = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"{path}: not valid JSON ({error})") from None
    if isinstance(value, dict):
        value = value.get("history")
    if not isinstance(value, list) or not all(isinstance(r, dict) and "epoch" in r for r in value):
        raise FormatError(f"{path}: expected a list of per-epoch records with an 'epoch' entry "
                          "(the metrics.json that striate train writes)")
    return value


def curve_series(history):
    """The curves of a history as float arrays: ``epoch`` and each of ``SERIES`` (NaN where not recorded).

    Example::

        >>> curve_series([{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": None}])["val_loss"]
        array([nan])
    """
    def number(record, key):
        value = record.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    series = {"epoch": numpy.array([number(r, "epoch") for r in history])}
    for key in SERIES:
        series[key] = numpy.array([number(r, key) for r in history])
    return series


def plot_curves(source, *, path=None, title=None):
    """Draw loss (left) and accuracy (right) per epoch, training and validation.

    Args:
        source: a run directory, a ``metrics.json`` / ``checkpoint.json`` path, or the list of
            records itself (``fit``'s return value).
        path: save the figure there as PNG when given.
        title: the figure's title (default: the run directory's name).

    Returns:
        The matplotlib ``Figure``.
    """
    if isinstance(source, list):
        history = source
    else:
        history = read_history(source)
        if title is None:
            where = pathlib.Path(source)
            title = (where if where.is_dir() else where.parent).name
    if not history:
        raise ValueError("plot_curves: the history has no epochs yet")
    series = curve_series(history)
    epochs = series["epoch"]
    figure = new_figure(9, 3.6, "plot_curves")
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    style = {"marker": "o", "markersize": 3.5, "linewidth": 1.6}
    for axis, key, label in ((loss_axis, "loss", "loss (cross-entropy)"), (accuracy_axis, "accuracy", "accuracy")):
        scale = 100.0 if key == "accuracy" else 1.0
        axis.plot(epochs, series[key] * scale, label="training", color="tab:blue", **style)
        if not numpy.isnan(series["val_" + key]).all():
            axis.plot(epochs, series["val_" + key] * scale, label="validation", color="tab:orange", **style)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label + (" (%)" if key == "accuracy" else ""))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        if len(epochs) <= 20:
            axis.set_xticks(epochs)
    last = history[-1]
    if last.get("val_accuracy") is not None:
        accuracy_axis.set_title(f"validation {last['val_accuracy']:.2%} after epoch {last['epoch']}", fontsize=9)
    if title:
        figure.suptitle(title, fontsize=11)
    return finish(figure, path)


__all__ = ["read_history", "curve_series", "plot_curves", "SERIES"]
