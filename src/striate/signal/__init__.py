"""Classical signal processing on arrays: N-d ``correlate`` / ``convolve`` and hand-made kernels.

    from striate import signal
    edges = signal.correlate(image, signal.kernels.sobel("x"), mode="same")

``correlate`` slides the kernel as it is — what a CNN layer computes; ``convolve`` is the
mathematician's convolution, a correlation with the kernel flipped on every axis. Both match
``scipy.signal.correlate`` / ``convolve`` (``method="direct"``) on real input of any rank.
"""
from striate.signal import kernels
from striate.signal.convolution import convolve, correlate

__all__ = ["correlate", "convolve", "kernels"]
