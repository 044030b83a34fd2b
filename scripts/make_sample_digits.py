"""Build the embedded ``Digits`` dataset: a stratified, deterministic subset of MNIST.

    python scripts/make_sample_digits.py [--mnist ../shared/data/mnist] [--out src/striate/data/sample]

Takes 1,000 images per class from MNIST's training set and 200 per class from its test set
(chosen with a fixed seed, kept in MNIST's original order) and writes them as four gzip'd IDX
files under the standard MNIST names, plus LICENSE.txt. The output is byte-for-byte reproducible.
"""
import argparse
import hashlib
import os
import sys

import numpy

from striate.data.datasets import MNIST
from striate.data.idx import encode_idx, write_idx

SEED = 20240917
TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
MAX_TOTAL_BYTES = 3 * 1024 * 1024

LICENSE = """\
striate's embedded digits (striate.data.datasets.Digits)
=========================================================

These four files are a subset of the MNIST database of handwritten digits
by Yann LeCun, Corinna Cortes and Christopher J. C. Burges
(http://yann.lecun.com/exdb/mnist/), redistributed under the
Creative Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0,
https://creativecommons.org/licenses/by-sa/3.0/). This subset is shared under
the same licence.

The images and labels are MNIST's own, unmodified; only the selection is new:

  train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz
      {train_total:,} images: {train_per_class:,} per class drawn from MNIST's 60,000 training images
  t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz
      {test_total:,} images: {test_per_class:,} per class drawn from MNIST's 10,000 test images
      (held out: none of them is in MNIST's training set)

How they were made: scripts/make_sample_digits.py in the striate repository.
For each class, numpy.random.default_rng(({seed}, split, class)).choice(...,
replace=False) picks the images (split 0 = train, 1 = test); the chosen indices
are sorted so the samples keep MNIST's original order. Files are written in the
standard IDX format, gzip level 9 with a zero timestamp.

Source files (MD5 of the decompressed IDX data):
{source_md5s}
"""


def stratified_indices(labels, per_class, seed, split):
    """``per_class`` indices of each class 0..9, chosen reproducibly, in ascending order."""
    chosen = []
    for c in range(10):
        members = numpy.flatnonzero(labels == c)
        rng = numpy.random.default_rng((seed, split, c))
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return numpy.sort(numpy.concatenate(chosen))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=os.path.join("..", "shared", "data", "mnist"),
                        help="directory holding the four MNIST IDX files")
    parser.add_argument("--out", default=os.path.join("src", "striate", "data", "sample"),
                        help="directory to write the subset into")
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    md5s = []
    for split, (train, prefix, per_class) in enumerate([(True, "train", TRAIN_PER_CLASS),
                                                         (False, "t10k", TEST_PER_CLASS)]):
        mnist = MNIST(args.mnist, train=train)
        md5s.append(f"  {prefix + '-images-idx3-ubyte':<25}{hashlib.md5(encode_idx(mnist.data)).hexdigest()}")
        md5s.append(f"  {prefix + '-labels-idx1-ubyte':<25}"
                    f"{hashlib.md5(encode_idx(mnist.targets.astype(numpy.uint8))).hexdigest()}")
        keep = stratified_indices(mnist.targets, per_class, SEED, split)
        write_idx(os.path.join(args.out, f"{prefix}-images-idx3-ubyte.gz"), mnist.data[keep])
        write_idx(os.path.join(args.out, f"{prefix}-labels-idx1-ubyte.gz"), mnist.targets[keep].astype(numpy.uint8))

    with open(os.path.join(args.out, "LICENSE.txt"), "w", encoding="utf-8") as f:
        f.write(LICENSE.format(train_total=10 * TRAIN_PER_CLASS, train_per_class=TRAIN_PER_CLASS,
                               test_total=10 * TEST_PER_CLASS, test_per_class=TEST_PER_CLASS,
                               seed=SEED, source_md5s="\n".join(md5s)))

    total = 0
    for name in sorted(os.listdir(args.out)):
        size = os.path.getsize(os.path.join(args.out, name))
        total += size
        print(f"{size:>10,}  {name}")
    print(f"{total:>10,}  total")
    if total > MAX_TOTAL_BYTES:
        print(f"error: the sample is {total:,} bytes, over the {MAX_TOTAL_BYTES:,}-byte budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
