"""A protocol as a sequence: case-file steps and ``{repeat = n, steps = [...]}`` tables parsed
into steps and repeat blocks, and unrolled in the order they run, with cycle numbers."""

from collections.abc import Collection, Iterable, Iterator
from itertools import count

from app.errors import CaseError, did_you_mean, listing
from app.protocols import FORMS_FIX, Item, ProtocolError, ProtocolStep, Repeat, parse_step


def parse_protocol(
    items: list, path: str = "protocol.steps", verbs: Collection[str] | None = None
) -> tuple[Item, ...]:
    """Parse the steps of a case file: strings and ``{repeat = n, steps = [...]}`` tables.

    Args:
        items: The steps as read from the case file.
        path: Case-file path of ``items``, for error messages.
        verbs: The verbs the executing physics knows, if known (see :func:`parse_step`).

    Raises:
        CaseError: The first malformed item, located like ``protocol.steps[1].steps[0]``.
    """
    if not isinstance(items, list | tuple):
        problem = f"expected a list of steps and repeat tables, got {items!r}"
        raise CaseError(path, problem, FORMS_FIX)
    if not items:
        raise CaseError(path, "no steps given", FORMS_FIX)
    return tuple(_item(item, f"{path}[{index}]", verbs) for index, item in enumerate(items))


def _item(item: object, path: str, verbs: Collection[str] | None) -> Item:
    if isinstance(item, str):
        try:
            return parse_step(item, verbs)
        except ProtocolError as exc:
            raise CaseError(path, exc.problem, exc.fix) from None
    if not isinstance(item, dict):
        raise CaseError(path, f"expected a step or a repeat table, got {item!r}", FORMS_FIX)
    allowed = ("repeat", "steps")
    for key in item:
        if key not in allowed:
            problem = f"unknown key '{key}'{did_you_mean(key, allowed)}; allowed keys here: "
            raise CaseError(f"{path}.{key}", problem + listing(allowed), "remove or correct it")
    for key in allowed:
        if key not in item:
            raise CaseError(path, f"missing required key '{key}'", FORMS_FIX)
    times = item["repeat"]
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        problem = f"the repeat count must be a whole number of at least 1, got {times!r}"
        raise CaseError(f"{path}.repeat", problem)
    return Repeat(times, parse_protocol(item["steps"], f"{path}.steps", verbs))


def count_steps(steps: Iterable[Item], repeat: int = 1) -> int:
    """How many steps :func:`expand` yields, without yielding them."""
    return repeat * sum(
        item.count * count_steps(item.steps) if isinstance(item, Repeat) else 1 for item in steps
    )


def expand(steps: Iterable[Item], repeat: int = 1) -> Iterator[tuple[int, int, ProtocolStep]]:
    """The steps in the order they run, with repeats unrolled (lazily).

    Yields ``(cycle, index, step)``: ``index`` counts the steps run, from 0; ``cycle`` counts
    passes through the outermost repetition. With ``repeat`` > 1 that is the whole protocol.
    Otherwise each pass through a top-level repeat block is a cycle, and so is each run of
    top-level steps outside repeat blocks: ``[A, Repeat(2, [B, C]), D]`` gives cycles 0, 1, 1,
    2, 2, 3.

    Raises:
        ValueError: ``repeat`` is below 1.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    steps = tuple(steps)
    passes = (steps for _ in range(repeat)) if repeat > 1 else _cycles(steps)
    index = count()
    for cycle, group in enumerate(passes):
        for step in _unrolled(group):
            yield cycle, next(index), step


def _cycles(steps: tuple[Item, ...]) -> Iterator[tuple[Item, ...]]:
    plain: list[ProtocolStep] = []
    for item in steps:
        if isinstance(item, ProtocolStep):
            plain.append(item)
            continue
        if plain:
            yield tuple(plain)
            plain = []
        for _ in range(item.count):
            yield item.steps
    if plain:
        yield tuple(plain)


def _unrolled(steps: Iterable[Item]) -> Iterator[ProtocolStep]:
    for item in steps:
        if isinstance(item, Repeat):
            for _ in range(item.count):
                yield from _unrolled(item.steps)
        else:
            yield item
