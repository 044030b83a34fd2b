import numpy
import pytest


@pytest.fixture
def rng():
    """A NumPy generator seeded per test, so failures reproduce."""
    return numpy.random.default_rng(1234)
