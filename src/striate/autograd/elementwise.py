"""Element-wise functions of one tensor: exp, log, sqrt, abs, clamp."""
from striate._backend import xp
from striate.autograd.function import Function


class Exp(Function):
    def forward(self, x):
        self.y = xp.exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return xp.log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    def forward(self, x):
        self.y = xp.sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return xp.abs(x)

    def backward(self, gy):
        return gy * xp.sign(self.x)


class Clamp(Function):
    """Clip into [min, max]; the gradient passes only where the input was inside (ends included)."""

    def forward(self, x, min=None, max=None):
        if self.needs_input_grad[0]:
            self.inside = xp.ones(x.shape, dtype=bool)
            if min is not None:
                self.inside &= x >= min
            if max is not None:
                self.inside &= x <= max
        # min then max, so min > max gives max everywhere, as in PyTorch
        y = x if min is None else xp.maximum(x, xp.asarray(min, dtype=x.dtype))
        y = y if max is None else xp.minimum(y, xp.asarray(max, dtype=x.dtype))
        return y

    def backward(self, gy):
        return gy * self.inside
