"""Which of a runner's containers the reaper removes before a job: all but the live
spares, one per image, of the images used last."""

from __future__ import annotations

from runners.job_containers import Listed
from runners.spares import stale_containers


def listed(
    name: str, spare_of: str | None, created: int, running: bool = True, image_id: str = "i1"
) -> Listed:
    return Listed(name, name, image_id, running, created, spare_of)


def names(containers: list[Listed]) -> list[str]:
    return sorted(container.name for container in containers)


def test_a_live_spare_of_each_image_is_kept() -> None:
    containers = [listed("a", "app:1", 10), listed("b", "tools:1", 11)]
    assert stale_containers(containers, keep=4) == []


def test_job_containers_and_stopped_spares_are_stale() -> None:
    containers = [
        listed("job", None, 12),
        listed("stopped", "app:1", 11, running=False),
        listed("live", "app:1", 10),
    ]
    assert names(stale_containers(containers, keep=4)) == ["job", "stopped"]


def test_one_spare_an_image_the_newest() -> None:
    containers = [listed("old", "app:1", 10), listed("new", "app:1", 11)]
    assert names(stale_containers(containers, keep=4)) == ["old"]


def test_spares_of_the_images_used_last_are_kept() -> None:
    containers = [listed("a", "a:1", 10), listed("b", "b:1", 11), listed("c", "c:1", 12)]
    assert names(stale_containers(containers, keep=2)) == ["a"]
    assert names(stale_containers(containers, keep=0)) == ["a", "b", "c"]


def test_a_spare_of_an_image_its_tag_no_longer_names_is_stale() -> None:
    containers = [listed("before", "app:1", 10, image_id="old"), listed("other", "b:1", 9)]
    assert names(stale_containers(containers, 4, "app:1", "rebuilt")) == ["before"]
    assert stale_containers(containers, 4, "app:1", "old") == []
