"""The training loop: ``fit`` over epochs with progress, divergence checks and checkpoints; ``evaluate``.

    model = st.models.lenet5()
    opt = st.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, train_loader, test_loader, opt, epochs=5, checkpoint=CheckpointWriter("runs/a", ...))
    result = evaluate(model, test_loader)          # loss, accuracy, per-class accuracy, confusion matrix
"""
import dataclasses
import math
import sys
import time

import numpy

from striate import random as st_random
from striate.autograd.anomaly import AnomalyError, detect_anomaly
from striate.autograd.grad_mode import no_grad
from striate.autograd.tensor import Tensor
from striate.nn import functional as F
from striate.optim.lr_scheduler import OneCycleLR
from striate.tools import checkpoint as checkpoints

_SCHEDULER_INTERVALS = ("epoch", "batch")


class TrainingDiverged(RuntimeError):
    """The training loss (or a parameter) became NaN or infinite; training stopped.

    When the loss goes bad, the step's forward pass is re-run under anomaly mode
    (``striate.autograd.detect_anomaly``: same weights, batch and random state) to find the
    operation whose output first held NaN or Inf; normal steps pay nothing for this.

    Attributes:
        epoch: the epoch (1-based) in which it happened.
        step: the batch (1-based) within that epoch.
        loss: the offending loss value (NaN or ±inf; NaN too when only a parameter went bad).
        checkpoint: path of the last good checkpoint's JSON, or None when none was written.
        op: the operation where non-finite values first appeared (e.g. ``"conv2d"``,
            ``"Tensor.log"``), or None when the re-run did not reproduce them.
        module: the name of the model's submodule that ran it (``"features.0"``), or None.
        anomaly: the ``AnomalyError`` of the re-run, or None.
    """

    def __init__(self, epoch, step, loss, checkpoint=None, what="loss", anomaly=None, module=None):
        self.epoch, self.step, self.loss, self.checkpoint = epoch, step, loss, checkpoint
        self.anomaly, self.module = anomaly, module
        self.op = None if anomaly is None else anomaly.op
        where = f"training diverged at epoch {epoch}, step {step}: {what} is {loss}"
        if checkpoint is not None:
            keep = f"the last good checkpoint is kept in {checkpoint}"
        else:
            keep = "no checkpoint was written before it"
        cause = ""
        if anomaly is not None:
            inside = f" in module {module!r}" if module else ""
            came = ("from finite inputs" if anomaly.inputs_finite else
                    "passing on non-finite values it received (from the data, or a parameter an earlier update broke)")
            cause = (f" Re-run under anomaly mode, {anomaly.kind} first appeared in the output of {anomaly.op} "
                     f"(Function {anomaly.function}){inside}, {came}.")
        super().__init__(f"{where}; {keep}. Try a lower learning rate (e.g. --lr), or check the data.{cause}")


@dataclasses.dataclass
class Evaluation:
    """What ``evaluate`` measured over a whole loader.

    Attributes:
        loss: mean loss per example.
        accuracy: fraction of examples whose top-scoring class is the label, in [0, 1].
        per_class_accuracy: ``(K,)`` float array, recall of each class (NaN for a class with no example).
        confusion_matrix: ``(K, K)`` int64 array, rows the true class, columns the predicted one.
        count: number of examples seen.
    """

    loss: float
    accuracy: float
    per_class_accuracy: numpy.ndarray
    confusion_matrix: numpy.ndarray
    count: int

    def to_dict(self):
        """A JSON-ready dict (NaN per-class accuracies become None)."""
        return {"loss": self.loss, "accuracy": self.accuracy, "count": self.count,
                "per_class_accuracy": [None if math.isnan(a) else float(a) for a in self.per_class_accuracy],
                "confusion_matrix": self.confusion_matrix.tolist()}


def _array(value):
    return value.data if isinstance(value, Tensor) else numpy.asarray(value)


def _split_batch(batch, what):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"{what}: expected the loader to yield (images, labels) pairs, "
                         f"got a {type(batch).__name__}" + (f" of length {len(batch)}" if hasattr(batch, "__len__") else ""))
    return batch


def evaluate(model, loader, num_classes=None, loss_fn=None):
    """Loss, accuracy, per-class accuracy and confusion matrix of ``model`` over ``loader``.

    Runs in eval mode under ``no_grad``; the model's previous mode is restored afterwards.

    Args:
        model: a Module mapping a batch of images to ``(B, K)`` logits.
        loader: an iterable of ``(images, labels)`` batches (Tensors or arrays).
        num_classes: ``K``; default the width of the model's output.
        loss_fn: ``loss_fn(logits, labels)`` returning per-example losses when called with
            ``reduction="sum"``; default ``F.cross_entropy``.

    Returns:
        An ``Evaluation``.

    Example::

        >>> result = evaluate(model, test_loader)
        >>> print(f"{result.accuracy:.2%}")
    """
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    was_training = model.training
    model.eval()
    total_loss, count, matrix = 0.0, 0, None
    try:
        with no_grad():
            for batch in loader:
                images, labels = _split_batch(batch, "evaluate")
                logits = model(images)
                labels_array = _array(labels).astype(numpy.int64, copy=False)
                total_loss += float(loss_fn(logits, labels, reduction="sum").item())
                if matrix is None:
                    k = num_classes or logits.shape[1]
                    matrix = numpy.zeros((k, k), dtype=numpy.int64)
                predicted = _array(logits).argmax(axis=1)
                numpy.add.at(matrix, (labels_array, predicted), 1)  # (true, predicted) counts
                count += len(labels_array)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no examples")
    correct_per_class = numpy.diag(matrix)
    per_class_count = matrix.sum(axis=1)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        per_class = numpy.where(per_class_count > 0, correct_per_class / numpy.maximum(per_class_count, 1), numpy.nan)
    return Evaluation(loss=total_loss / count, accuracy=float(correct_per_class.sum() / count),
                      per_class_accuracy=per_class, confusion_matrix=matrix, count=count)


class _Progress:
    """A tqdm bar over one epoch's images (ETA and images/s), or nothing when tqdm is off."""

    def __init__(self, enabled, total, description):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=description, unit="img", leave=False, dynamic_ncols=True,
                            file=sys.stderr)

    def update(self, images, loss, accuracy):
        if self.bar is not None:
            self.bar.update(images)
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.2%}", refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _use_tqdm(progress):
    """Whether to draw a bar: ``"auto"`` means tqdm is installed and stderr is a terminal."""
    if progress not in (True, False, "auto"):
        raise ValueError(f"fit: progress must be True, False or 'auto', got {progress!r}")
    if progress is False:
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        if progress is True:
            raise ImportError("fit: progress=True needs tqdm; install it with pip install 'striate[cli]'") from None
        return False
    return progress is True or sys.stderr.isatty()


def _epoch_images(loader):
    """How many images one pass over ``loader`` yields (for the bar's total), or None when unknown."""
    dataset, batch_size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)
    try:
        if getattr(loader, "drop_last", False) and batch_size:
            return len(loader) * batch_size
        return len(dataset) if dataset is not None else None
    except TypeError:
        return None


def _scheduler_interval(scheduler, interval):
    if scheduler is None:
        return None
    if interval is None:
        # OneCycleLR counts batches (its total_steps is epochs·steps_per_epoch); the others count epochs.
        return "batch" if isinstance(scheduler, OneCycleLR) else "epoch"
    if interval not in _SCHEDULER_INTERVALS:
        raise ValueError(f"fit: scheduler_interval must be one of {_SCHEDULER_INTERVALS} or None, got {interval!r}")
    return interval


def _locate_non_finite(model, images, labels, loss_fn, rng_state):
    """Re-run a step's forward under anomaly mode; return ``(AnomalyError or None, module name or None)``.

    The random state is rewound to where the step began (so dropout draws the same masks) and
    restored afterwards, and buffers (BatchNorm's running statistics) are put back, so the
    re-run leaves no trace.
    """
    buffers = [(buffer, buffer.data.copy()) for _, buffer in model.named_buffers() if buffer is not None]
    after = st_random.get_rng_state()
    st_random.set_rng_state(rng_state)
    try:
        with no_grad(), detect_anomaly():
            loss_fn(model(images), labels)
    except AnomalyError as error:
        names = {id(module): name for name, module in model.named_modules()}
        module = next((names[id(owner)] for owner in error.owners if names.get(id(owner))), None)
        return error, module
    finally:
        st_random.set_rng_state(after)
        for buffer, saved in buffers:
            buffer.data[...] = saved
    return None, None


def _first_bad_parameter(model):
    for name, param in model.named_parameters():
        if not numpy.isfinite(param.data).all():
            return name
    return None


def train_one_epoch(model, loader, optimizer, *, epoch, loss_fn=None, scheduler=None, scheduler_interval=None,
                    progress=None, last_checkpoint=None):
    """One pass over ``loader``: forward, loss, backward, optimizer step for each batch.

    Returns:
        ``{"loss", "accuracy", "images", "seconds", "images_per_s"}`` for the epoch, where loss
        and accuracy are means over the training examples as the weights moved.

    Raises:
        TrainingDiverged: the loss became NaN or infinite (checked before each update); it names the
            operation where non-finite values first appeared (see ``TrainingDiverged``).
    """
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    model.train()
    bar = progress or _Progress(False, None, "")
    total_loss, correct, seen, step = 0.0, 0, 0, 0
    start = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        images, labels = _split_batch(batch, "fit")
        optimizer.zero_grad()
        rng_state = st_random.get_rng_state()   # to replay this step if its loss is not finite
        logits = model(images)
        loss = loss_fn(logits, labels)
        value = float(loss.item())
        if not math.isfinite(value):
            anomaly, module = _locate_non_finite(model, images, labels, loss_fn, rng_state)
            raise TrainingDiverged(epoch, step, value, last_checkpoint, anomaly=anomaly, module=module)
        loss.backward()
        optimizer.step()
        if scheduler_interval == "batch":
            scheduler.step()
        labels_array = _array(labels)
        batch_size = len(labels_array)
        total_loss += value * batch_size
        correct += int((_array(logits).argmax(axis=1) == labels_array).sum())
        seen += batch_size
        bar.update(batch_size, total_loss / seen, correct / seen)
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError("fit: the training loader yielded no batches")
    bad = _first_bad_parameter(model)
    if bad is not None:
        raise TrainingDiverged(epoch, step, float("nan"), last_checkpoint, what=f"parameter {bad!r}")
    return {"loss": total_loss / seen, "accuracy": correct / seen, "images": seen, "seconds": seconds,
            "images_per_s": seen / seconds if seconds > 0 else float("inf")}


def _format_record(record, epochs):
    text = (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  loss {record['loss']:.4f}  "
            f"acc {record['accuracy']:.2%}")
    if record.get("val_loss") is not None:
        text += f"  val_loss {record['val_loss']:.4f}  val_acc {record['val_accuracy']:.2%}"
    return text + f"  {record['images_per_s']:,.0f} img/s  {record['seconds']:.1f} s"


def fit(model, train_loader, val_loader, optimizer, epochs, *, loss_fn=None, scheduler=None,
        scheduler_interval=None, checkpoint=None, resume=None, progress="auto", stream=None):
    """Train ``model`` until ``epochs`` epochs are done, validating and checkpointing after each.

    Each epoch runs ``train_one_epoch``, then ``evaluate`` on ``val_loader``, appends a record
    ``{"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "images_per_s", "seconds", "lr"}``
    to the history, prints it as one line to ``stream`` and, when ``checkpoint`` is given,
    writes the checkpoint and ``metrics.json`` atomically. Results are a pure function of
    the seeds: seed striate (``st.manual_seed``) before building the model and give the
    train loader a ``seed``.

    Args:
        model: the Module to train.
        train_loader: yields ``(images, labels)`` batches; its ``epoch`` (the shuffling
            epoch of a ``striate.data.DataLoader``) is saved and restored on resume.
        val_loader: held-out batches for validation after each epoch, or None.
        optimizer: a ``striate.optim`` optimizer over ``model``'s parameters.
        epochs: the total number of epochs; a resumed run continues up to this number.
        loss_fn: ``loss_fn(logits, labels, reduction=...)``; default ``F.cross_entropy``.
        scheduler: a learning-rate schedule, or None.
        scheduler_interval: ``"epoch"`` or ``"batch"``: when to call ``scheduler.step()``;
            default ``"batch"`` for ``OneCycleLR``, ``"epoch"`` otherwise.
        checkpoint: a ``CheckpointWriter`` (or a directory) to save every epoch to.
        resume: a checkpoint (directory, ``checkpoint.json`` or weights file) to continue from:
            weights, optimizer and scheduler state, loader epoch, random state and history
            are restored, so the result equals an uninterrupted run bit for bit.
        progress: ``"auto"`` (a tqdm bar when tqdm is installed and stderr is a terminal),
            True or False. Without a bar, only the per-epoch lines are printed.
        stream: where the per-epoch lines go (default ``sys.stdout``); ``False`` prints nothing.

    Returns:
        The history: a list of per-epoch record dicts (including resumed epochs).

    Raises:
        TrainingDiverged: the loss became NaN or infinite; the last good checkpoint is kept.

    Example::

        >>> st.manual_seed(0)
        >>> model = st.models.lenet5()
        >>> opt = st.optim.Adam(model.parameters(), lr=1e-3)
        >>> history = fit(model, train_loader, test_loader, opt, epochs=5)
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    interval = _scheduler_interval(scheduler, scheduler_interval)
    use_bar = _use_tqdm(progress)
    stream = sys.stdout if stream is None else stream
    if checkpoint is not None and not isinstance(checkpoint, checkpoints.CheckpointWriter):
        checkpoint = checkpoints.CheckpointWriter(checkpoint)

    history, start_epoch, last_good = [], 0, None
    if resume is not None:
        saved = resume if isinstance(resume, checkpoints.Checkpoint) else checkpoints.load_checkpoint(resume)
        checkpoints.restore(saved, model=model, optimizer=optimizer, scheduler=scheduler, loader=train_loader)
        history, start_epoch = list(saved.history), saved.epoch
        last_good = str(saved.path)
        if start_epoch > epochs:
            raise ValueError(f"fit: the checkpoint {saved.path} has already done {start_epoch} epochs, "
                             f"more than epochs={epochs}")

    total_images = _epoch_images(train_loader)
    for epoch in range(start_epoch + 1, epochs + 1):
        bar = _Progress(use_bar, total_images, f"epoch {epoch}/{epochs}")
        try:
            record = train_one_epoch(model, train_loader, optimizer, epoch=epoch, loss_fn=loss_fn,
                                     scheduler=scheduler, scheduler_interval=interval, progress=bar,
                                     last_checkpoint=last_good)
        finally:
            bar.close()
        record = {"epoch": epoch, **record, "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            result = evaluate(model, val_loader, loss_fn=loss_fn)
            record.update(val_loss=result.loss, val_accuracy=result.accuracy)
        else:
            record.update(val_loss=None, val_accuracy=None)
        if interval == "epoch":
            scheduler.step()
        history.append(record)
        if stream:
            print(_format_record(record, epochs), file=stream, flush=True)
        if checkpoint is not None:
            last_good = str(checkpoint.save(model=model, optimizer=optimizer, epoch=epoch, scheduler=scheduler,
                                            scheduler_interval=interval, loader=train_loader, history=history))
    return history


__all__ = ["fit", "evaluate", "train_one_epoch", "Evaluation", "TrainingDiverged"]
