"""A training loader with one bad value planted in one batch, for the divergence tests."""
import striate as st


class TamperedLoader:
    """Wraps a `DataLoader`; batch ``step`` of epoch ``epoch`` (both 1-based) gets ``value`` as its first element."""

    def __init__(self, loader, epoch, step, value):
        self.loader, self.at, self.value = loader, (epoch, step), value

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        epoch = self.loader.epoch + 1
        for step, (images, labels) in enumerate(self.loader, start=1):
            if (epoch, step) == self.at:
                images = images.numpy().copy()
                images.flat[0] = self.value
                images = st.tensor(images)
            yield images, labels
