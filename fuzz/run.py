"""Run striate's fuzz targets: ``python fuzz/run.py [--seconds N] [--runs N] [--engine E] [target ...]``.

Each target (``fuzz/targets.py``) feeds bytes to one file parser; any exception other than
``striate.FormatError``, an input slower than ``--timeout`` seconds, or a process growing past
``--rss-limit-mb`` is a failure, saved under ``--artifacts`` so it can be replayed:
``python fuzz/run.py --replay FILE target``.

Engines:
    atheris  coverage-guided (libFuzzer) through atheris, one subprocess per target; the default
             when ``import atheris`` works.
    plain    a mutation driver with no dependencies: seeds mutated by bit flips, interesting
             integers, insertions, deletions, truncation and splices, plus purely random bytes.
             The same targets, no coverage feedback.

Exit status 0 when every target ran clean, 1 when one failed, 2 for bad arguments.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARTIFACTS = os.path.join(HERE, "artifacts")


def _targets():
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import targets
    return targets


def atheris_available():
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


# ----- the plain driver ---------------------------------------------------------------------------------------------
INTERESTING = [0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2 ** 32,
               2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1]


def mutate(data, rng, seeds):
    """A mutated copy of ``data`` (1 to 4 random edits), or random bytes one time in ten."""
    if rng.random() < 0.1 or not data:
        return bytes(rng.integers(0, 256, int(rng.integers(0, 512)), dtype="u1"))
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        choice = int(rng.integers(9))
        where = int(rng.integers(0, len(out) + 1))
        if choice == 0 and out:                                   # flip one bit
            where %= len(out)
            out[where] ^= 1 << int(rng.integers(8))
        elif choice == 1 and out:                                 # set one byte
            out[where % len(out)] = int(rng.integers(256))
        elif choice == 2:                                         # an interesting integer, 1/2/4/8 bytes
            width = int(rng.choice([1, 2, 4, 8]))
            value = int(rng.choice(INTERESTING)) % (1 << (8 * width))
            order = "little" if rng.random() < 0.5 else "big"
            out[where:where + width] = value.to_bytes(width, order)
        elif choice == 3:                                         # insert random bytes
            out[where:where] = bytes(rng.integers(0, 256, int(rng.integers(1, 17)), dtype="u1"))
        elif choice == 4 and out:                                 # delete a range
            del out[where:where + int(rng.integers(1, 33))]
        elif choice == 5 and out:                                 # duplicate a range
            piece = out[where:where + int(rng.integers(1, 65))]
            out[where:where] = piece
        elif choice == 6 and out:                                 # truncate
            del out[int(rng.integers(0, len(out))):]
        elif choice == 7:                                         # splice in part of another seed
            other = seeds[int(rng.integers(len(seeds)))]
            start = int(rng.integers(0, len(other) + 1))
            out[where:where + int(rng.integers(0, 33))] = other[start:start + int(rng.integers(1, 65))]
        elif choice == 8:                                         # ASCII digits and JSON punctuation
            out[where:where] = bytes(rng.choice(list(b'0123456789-{}[]",:eE.'), int(rng.integers(1, 6))))
    return bytes(out)


def _rss_mb():
    """The process's resident memory now, in MB (Linux); elsewhere its peak so far (0 where unknown)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:   # Windows: no RSS check
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


class Failure(Exception):
    """A target misbehaved on an input (saved as ``path``)."""

    def __init__(self, message, path):
        super().__init__(f"{message} (input saved to {path})")
        self.path = path


def _save(artifacts, name, kind, data):
    os.makedirs(artifacts, exist_ok=True)
    import hashlib
    path = os.path.join(artifacts, f"{name}-{kind}-{hashlib.sha1(data).hexdigest()[:16]}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_plain(name, *, seconds=None, runs=None, seed=0, timeout=5.0, rss_limit_mb=2048, artifacts=DEFAULT_ARTIFACTS):
    """Fuzz one target with the plain driver until ``seconds`` pass or ``runs`` inputs ran; returns the count.

    Raises:
        Failure: an input raised something other than FormatError, took longer than ``timeout``
            seconds, or the process grew by more than ``rss_limit_mb`` since the run began
            (growth, not the total: run inside a test process, earlier work may hold memory already).
    """
    import numpy
    targets = _targets()
    function, seeds = targets.TARGETS[name], targets.SEEDS[name]
    rng = numpy.random.default_rng(seed)
    pool = list(seeds)
    deadline = None if seconds is None else time.monotonic() + seconds
    count = 0
    start_mb = _rss_mb()
    while (runs is None or count < runs) and (deadline is None or time.monotonic() < deadline):
        data = pool[count] if count < len(pool) else mutate(pool[int(rng.integers(len(pool)))], rng, pool)
        start = time.monotonic()
        try:
            function(data)
        except Exception as error:   # anything but FormatError (which the target absorbs) is a bug
            path = _save(artifacts, name, "crash", data)
            raise Failure(f"{name}: {type(error).__name__}: {error!s:.500}", path) from error
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            raise Failure(f"{name}: one input took {elapsed:.1f} s (limit {timeout} s)",
                          _save(artifacts, name, "slow", data))
        if rss_limit_mb and _rss_mb() - start_mb > rss_limit_mb:
            raise Failure(f"{name}: the process grew by {_rss_mb() - start_mb:.0f} MB (limit {rss_limit_mb} MB)",
                          _save(artifacts, name, "memory", data))
        if count >= len(seeds) and len(pool) < 256 and rng.random() < 0.02:
            pool.append(data)         # keep some mutants, so mutations can stack
        count += 1
    return count


# ----- the atheris engine -------------------------------------------------------------------------------------------
# Only the parsers get coverage instrumentation: instrumenting all of striate (autograd, ops,
# models) would cost seconds of start-up per target and guide the fuzzer nowhere useful.
PARSER_MODULES = {"striate.serialization", "striate.io", "striate.errors", "striate.data.idx",
                  "striate.tools.checkpoint", "striate.data.safe_pickle", "striate.data.datasets.cifar"}


def _other_striate_modules():
    """Every module of the striate package except PARSER_MODULES (found from the files, not imported)."""
    import importlib.util
    root = os.path.dirname(importlib.util.find_spec("striate").origin)
    names = set()
    for directory, _, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        package = "striate" if relative == "." else "striate." + relative.replace(os.sep, ".")
        for file in files:
            if file.endswith(".py"):
                names.add(package if file == "__init__.py" else f"{package}.{file[:-3]}")
    return sorted(names - PARSER_MODULES)


def _atheris_worker(name, seconds, runs, timeout, rss_limit_mb, artifacts, corpus):
    """Inside a subprocess: instrument striate's parsers, then hand the target to libFuzzer (which exits)."""
    import atheris
    with atheris.instrument_imports(include=["striate"], exclude=_other_striate_modules()):
        targets = _targets()
    function = targets.TARGETS[name]
    os.makedirs(artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"striate-fuzz-{name}-") if corpus is None else corpus
    os.makedirs(work, exist_ok=True)
    for i, seed in enumerate(targets.SEEDS[name]):
        with open(os.path.join(work, f"seed-{i}"), "wb") as f:
            f.write(seed)
    args = [sys.argv[0], f"-timeout={int(max(timeout, 1))}", f"-rss_limit_mb={rss_limit_mb}",
            f"-artifact_prefix={os.path.join(artifacts, name)}-", "-print_final_stats=1"]
    if seconds is not None:
        args.append(f"-max_total_time={max(int(seconds), 1)}")
    if runs is not None:
        args.append(f"-runs={runs}")
    atheris.Setup(args + [work], function)
    atheris.Fuzz()


def run_atheris(name, *, seconds=None, runs=None, timeout=5.0, rss_limit_mb=2048, artifacts=DEFAULT_ARTIFACTS,
                corpus=None, quiet=False):
    """Fuzz one target with atheris in a subprocess; returns its ``subprocess.CompletedProcess``."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--timeout", str(timeout),
               "--rss-limit-mb", str(rss_limit_mb), "--artifacts", artifacts]
    if seconds is not None:
        command += ["--seconds", str(seconds)]
    if runs is not None:
        command += ["--runs", str(runs)]
    if corpus is not None:
        command += ["--corpus", corpus]
    limit = None if seconds is None else seconds * 4 + 120
    return subprocess.run(command, capture_output=quiet, text=True, timeout=limit)


# ----- the command --------------------------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog="python fuzz/run.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="targets to run (default: all)")
    parser.add_argument("--seconds", type=float, default=None, help="time per target (default 60, or none "
                                                                    "when --runs is given)")
    parser.add_argument("--runs", type=int, default=None, help="inputs per target")
    parser.add_argument("--engine", choices=("auto", "atheris", "plain"), default="auto")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds one input may take (default 5)")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="memory limit of the fuzzing process")
    parser.add_argument("--artifacts", default=DEFAULT_ARTIFACTS, help="where failing inputs are saved")
    parser.add_argument("--corpus", default=None, help="atheris: keep the corpus in this directory")
    parser.add_argument("--seed", type=int, default=0, help="plain driver: random seed")
    parser.add_argument("--replay", metavar="FILE",
                        help="run one saved input through the target and show what it raises")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.worker:
        _atheris_worker(args.worker, args.seconds, args.runs, args.timeout, args.rss_limit_mb, args.artifacts,
                        args.corpus)
        return 0
    targets = _targets()
    if args.list:
        print("\n".join(targets.TARGETS))
        return 0
    unknown = [name for name in args.targets if name not in targets.TARGETS]
    if unknown:
        print(f"fuzz/run.py: unknown target(s) {', '.join(unknown)}; known: {', '.join(targets.TARGETS)}",
              file=sys.stderr)
        return 2
    names = args.targets or list(targets.TARGETS)
    if args.replay:
        with open(args.replay, "rb") as f:
            data = f.read()
        for name in names:
            targets.TARGETS[name](data)     # lets the exception, if any, show its traceback
            print(f"{name}: {args.replay} parses or raises FormatError")
        return 0
    seconds = args.seconds if args.seconds is not None or args.runs is not None else 60.0
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if atheris_available() else "plain"
    if engine == "atheris" and not atheris_available():
        print("fuzz/run.py: atheris is not installed (pip install atheris); use --engine plain", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        start = time.monotonic()
        if engine == "atheris":
            result = run_atheris(name, seconds=seconds, runs=args.runs, timeout=args.timeout,
                                 rss_limit_mb=args.rss_limit_mb, artifacts=args.artifacts, corpus=args.corpus)
            ok, detail = result.returncode == 0, f"exit status {result.returncode}"
        else:
            try:
                count = run_plain(name, seconds=seconds, runs=args.runs, seed=args.seed, timeout=args.timeout,
                                  rss_limit_mb=args.rss_limit_mb, artifacts=args.artifacts)
                ok, detail = True, f"{count} inputs"
            except Failure as error:
                ok, detail = False, str(error)
        print(f"{name}: {'ok' if ok else 'FAILED'} ({engine}, {detail}, {time.monotonic() - start:.1f} s)", flush=True)
        if not ok:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}; inputs are in {args.artifacts}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
