"""See what a network sees: feature maps, filters, training curves, confusion, receptive fields, saliency, kernels.

Each ``plot_*`` function returns a matplotlib ``Figure`` and saves it as PNG when given
``path=``; it draws on the Agg canvas (no window, no pyplot state). Beside each one is the
plain array computation it draws, so what a picture shows can be checked with numbers:

=====================  ===================================  ==========================================
picture                draws                                computed by
=====================  ===================================  ==========================================
``plot_feature_maps``  every conv/pool layer's output       ``feature_maps``, ``feature_grid``
``plot_filters``       a convolution's filters as tiles     ``filter_tiles``, ``filter_grid``
``plot_curves``        loss and accuracy per epoch          ``read_history``, ``curve_series``
``plot_confusion``     the confusion matrix                 ``confusion_rates``
``plot_receptive_field``  one unit's field as a box         ``receptive_bounds``, ``receptive_box``
``plot_saliency``      ∂ class score / ∂ input              ``saliency_map``
``plot_kernels``       hand-made beside learned kernels     ``kernel_responses``, ``learned_responses``
=====================  ===================================  ==========================================

``explain_unit`` gives the real numbers behind one unit (``x = g(Σ x·w + b)``); the
``striate explore`` web page (``striate.viz.explore``) shows all of it live. Drawing needs
matplotlib and reading image files Pillow: ``pip install 'striate[viz]'``. Only the plot
functions import matplotlib, so the array functions work with NumPy alone.
"""
from striate.viz._common import tile_grid
from striate.viz.confusion import confusion_rates, plot_confusion
from striate.viz.curves import curve_series, plot_curves, read_history
from striate.viz.features import FeatureMap, feature_grid, feature_maps, layer_scale, plot_feature_maps
from striate.viz.filters import conv_layers, filter_grid, filter_tiles, plot_filters
from striate.viz.kernels import kernel_responses, learned_responses, plot_kernels
from striate.viz.receptive import plot_receptive_field, receptive_bounds, receptive_box
from striate.viz.saliency import plot_saliency, saliency_map
from striate.viz.units import UnitExplanation, explain_unit

__all__ = [
    "tile_grid",
    "FeatureMap", "feature_maps", "feature_grid", "layer_scale", "plot_feature_maps",
    "conv_layers", "filter_tiles", "filter_grid", "plot_filters",
    "read_history", "curve_series", "plot_curves",
    "confusion_rates", "plot_confusion",
    "receptive_bounds", "receptive_box", "plot_receptive_field",
    "saliency_map", "plot_saliency",
    "kernel_responses", "learned_responses", "plot_kernels",
    "UnitExplanation", "explain_unit",
]
