from __future__ import annotations

import pytest

from pipelines.errors import Conflict, InvalidInput
from pipelines.rollout import Grouping, PauseMode, plan, rollback_target, split, traffic_weights

FOUR = ["a-1", "a-2", "a-3", "a-4"]


def test_batches_split_evenly_smaller_first() -> None:
    assert split(FOUR, 2) == [["a-1", "a-2"], ["a-3", "a-4"]]
    assert split([*FOUR, "a-5"], 2) == [["a-1", "a-2"], ["a-3", "a-4", "a-5"]]
    assert split(FOUR, 9) == [["a-1"], ["a-2"], ["a-3"], ["a-4"]]


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        (Grouping.TWO_GROUPS, [["a-1", "a-2"], ["a-3", "a-4"]]),
        (Grouping.ALL_AT_ONCE, [FOUR]),
        (Grouping.ONE_BY_ONE, [["a-1"], ["a-2"], ["a-3"], ["a-4"]]),
    ],
)
def test_groupings(grouping: Grouping, expected: list[list[str]]) -> None:
    assert plan(FOUR, grouping=grouping).batches == expected


def test_a_beta_instance_goes_first_alone_and_waits() -> None:
    beta = plan(FOUR, grouping=Grouping.TWO_GROUPS, beta=True)
    assert beta.batches == [["a-1"], ["a-2"], ["a-3", "a-4"]]
    assert beta.pauses_after(0, PauseMode.NEVER)
    assert not beta.pauses_after(1, PauseMode.NEVER)
    assert beta.pauses_after(1, PauseMode.AFTER_FIRST)  # the first batch after the beta


def test_pause_modes() -> None:
    three = plan(["a-1", "a-2", "a-3"], batches=3)
    assert [three.pauses_after(i, PauseMode.AFTER_FIRST) for i in range(3)] == [True, False, False]
    assert [three.pauses_after(i, PauseMode.AFTER_EVERY) for i in range(3)] == [True, True, False]
    assert [three.pauses_after(i, PauseMode.NEVER) for i in range(3)] == [False, False, False]


def test_a_stateful_application_goes_one_by_one_in_order() -> None:
    stateful = plan(FOUR, batches=2, beta=True, stateful=True)
    assert stateful.batches == [["a-1"], ["a-2"], ["a-3"], ["a-4"]]
    assert not stateful.beta


def test_release_orders_are_checked() -> None:
    with pytest.raises(InvalidInput, match="either a batch count or a grouping"):
        plan(FOUR, batches=2, grouping=Grouping.ALL_AT_ONCE)
    with pytest.raises(InvalidInput, match="at least one batch"):
        plan(FOUR, batches=0)
    with pytest.raises(InvalidInput, match="no instance"):
        plan([], batches=1)


def test_rollback_only_to_a_version_once_released() -> None:
    with pytest.raises(Conflict, match="never had a successful release"):
        rollback_target([], "sha256:a")
    with pytest.raises(Conflict, match="never released successfully"):
        rollback_target(["sha256:a"], "sha256:b")
    assert rollback_target(["sha256:a", "sha256:b"], "sha256:a") == "sha256:a"


def test_traffic_weights_give_the_new_instances_their_share() -> None:
    old = ["o1", "o2", "o3"]
    assert traffic_weights(["n1"], old, 10) == {"n1": 1, "o1": 3, "o2": 3, "o3": 3}
    assert traffic_weights(["n1"], old, 50) == {"n1": 3, "o1": 1, "o2": 1, "o3": 1}
    assert traffic_weights(["n1", "n2"], ["o1", "o2"], 10) == {"n1": 1, "n2": 1, "o1": 9, "o2": 9}
    assert traffic_weights(["n1"], old, 100) == {"n1": 1, "o1": 0, "o2": 0, "o3": 0}
    assert traffic_weights(["n1"], old, 0) == {"n1": 0, "o1": 1, "o2": 1, "o3": 1}
    assert traffic_weights([], old, 10) == {"o1": 1, "o2": 1, "o3": 1}
    # 2 new at 33 percent against 3 old: 99 and 134, scaled into the agent's 1..100.
    scaled = traffic_weights(["n1", "n2"], old, 33)
    assert (scaled["n1"], scaled["o1"]) == (74, 100)
    assert abs(2 * 74 / (2 * 74 + 3 * 100) - 0.33) < 0.005
    with pytest.raises(InvalidInput, match="percentage"):
        traffic_weights(["n1"], old, 101)
