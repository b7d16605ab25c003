"""Interleaved timing and Markdown tables."""
import math
import statistics
import time


def interleaved(candidates, repeats, warmup=2, min_time=0.02):
    """Time every callable in ``candidates`` (a dict name -> fn), interleaved.

    Each repeat calls every candidate in turn (the order alternates between
    repeats); a fast call is run ``number`` times per sample, so a sample lasts at
    least ``min_time`` seconds and the timer's resolution does not matter.
    Returns {name: [seconds per call, one per repeat]}.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    slowest = 0.0
    for fn in candidates.values():
        start = time.perf_counter()
        fn()
        slowest = max(slowest, time.perf_counter() - start)
    number = max(1, math.ceil(min_time / max(slowest, 1e-9)))
    samples = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn = candidates[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return samples


def median(xs):
    return statistics.median(xs)


def paired_ratio(a, b):
    """Median over repeats of a[i] / b[i]: the two were timed side by side."""
    return statistics.median(x / y for x, y in zip(a, b))


def markdown_table(header, rows):
    """Rows of strings as a Markdown table, columns padded to line up."""
    cells = [header] + rows
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])
