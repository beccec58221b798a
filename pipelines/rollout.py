"""Release plans (L1, L2, L5): which instances go in which batch, and when a release
pauses. Pure: the release engine asks, the Docker Engine does.

A release order names either a batch count (the instances split into N batches, the
earlier batches never larger than the later ones, so the first is the smallest risk)
or a grouping: two groups, all at once, or one by one. A beta group puts one instance
first, alone, and always waits for a person's confirmation after it (L5). A stateful
application ignores all of this: its instances go one by one, in order, so each keeps
its identity and data and the others keep a quorum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pipelines.errors import Conflict, InvalidInput


class Grouping(StrEnum):
    TWO_GROUPS = "two_groups"
    ALL_AT_ONCE = "all_at_once"
    ONE_BY_ONE = "one_by_one"


class PauseMode(StrEnum):
    AFTER_FIRST = "after_first"  # pause once, after the first batch
    AFTER_EVERY = "after_every"  # pause after every batch but the last
    NEVER = "never"


@dataclass(frozen=True)
class Plan:
    batches: list[list[str]]
    beta: bool  # the first batch is the beta group: one instance, then a confirmation

    def pauses_after(self, index: int, mode: PauseMode) -> bool:
        """Whether the release waits for a person after batch ``index``. The mode can
        change while the release runs, so it is asked each time."""
        if index >= len(self.batches) - 1:
            return False  # after the last batch there is nothing to wait for
        if self.beta and index == 0:
            return True
        first = 1 if self.beta else 0
        if mode is PauseMode.AFTER_EVERY:
            return True
        return mode is PauseMode.AFTER_FIRST and index == first


def split(instances: Sequence[str], count: int) -> list[list[str]]:
    """``instances`` in ``count`` batches of sizes that differ by one at most, the
    smaller ones first: 5 in 2 is 2 then 3."""
    count = min(count, len(instances))
    small, extra = divmod(len(instances), count)
    batches, start = [], 0
    for index in range(count):
        size = small + (1 if index >= count - extra else 0)
        batches.append(list(instances[start : start + size]))
        start += size
    return batches


def plan(
    instances: Sequence[str],
    *,
    batches: int | None = None,
    grouping: Grouping | None = None,
    beta: bool = False,
    stateful: bool = False,
) -> Plan:
    if not instances:
        raise InvalidInput("the environment has no instance to release to", "instances")
    if (batches is None) == (grouping is None):
        raise InvalidInput("a release gives either a batch count or a grouping", "batches")
    if batches is not None and batches < 1:
        raise InvalidInput("a release has at least one batch", "batches")
    if stateful:
        return Plan([[name] for name in instances], beta=False)
    first: list[list[str]] = []
    rest = list(instances)
    if beta and len(rest) > 1:
        first, rest = [[rest[0]]], rest[1:]
    if grouping is Grouping.ALL_AT_ONCE:
        count = 1
    elif grouping is Grouping.ONE_BY_ONE:
        count = len(rest)
    elif grouping is Grouping.TWO_GROUPS:
        count = 2
    else:
        assert batches is not None
        count = batches
    return Plan(first + split(rest, count), beta=bool(first))


def rollback_target(successful_versions: Sequence[str], version: str) -> str:
    """A release may roll back only to a version once released successfully to the
    same environment (L4); raise Conflict saying why not otherwise."""
    if not successful_versions:
        raise Conflict("this environment never had a successful release: nothing to roll back to")
    if version not in successful_versions:
        raise Conflict(f"{version} was never released successfully to this environment")
    return version


MAX_WEIGHT = 100  # the highest weight the confd agent renders


def traffic_weights(new: list[str], old: list[str], share: int) -> dict[str, int]:
    """nginx weights giving the ``new`` instances together ``share`` percent of the
    requests and the ``old`` ones the rest (L6); 0 means no traffic. The smallest
    whole numbers that do it: 1 new and 3 old at 10 percent weigh 1 and 3 each."""
    if not 0 <= share <= 100:
        raise InvalidInput("the share of the new instances is a percentage, 0 to 100", "share")
    if not new or not old or share in (0, 100):
        return {name: int(share > 0) for name in new} | {name: int(share < 100) for name in old}
    new_weight, old_weight = share * len(old), (100 - share) * len(new)
    divisor = math.gcd(new_weight, old_weight)
    new_weight, old_weight = new_weight // divisor, old_weight // divisor
    if max(new_weight, old_weight) > MAX_WEIGHT:  # the agent renders 1..100: scale down
        scale = MAX_WEIGHT / max(new_weight, old_weight)
        new_weight = max(1, round(new_weight * scale))
        old_weight = max(1, round(old_weight * scale))
    return {name: new_weight for name in new} | {name: old_weight for name in old}
