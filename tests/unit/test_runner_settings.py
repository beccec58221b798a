"""How many images a runner keeps a pre-started container of (SHIPWAY_SPARE_IMAGES)."""

from __future__ import annotations

import pytest

from pipelines.errors import InvalidInput
from runners.settings import RunnerSettings
from runners.spares import DEFAULT_SPARE_IMAGES

REQUIRED = {"SHIPWAY_SERVER_URL": "http://127.0.0.1:8080", "SHIPWAY_RUNNER_TOKEN": "t" * 20}


def test_spares_are_kept_for_a_few_images_by_default() -> None:
    assert RunnerSettings.from_env(REQUIRED).spare_images == DEFAULT_SPARE_IMAGES == 4


@pytest.mark.parametrize(("raw", "images"), [("0", 0), ("1", 1), ("12", 12)])
def test_the_images_kept_are_set_and_zero_keeps_none(raw: str, images: int) -> None:
    settings = RunnerSettings.from_env({**REQUIRED, "SHIPWAY_SPARE_IMAGES": raw})
    assert settings.spare_images == images


@pytest.mark.parametrize("raw", ["-1", "two", "1.5", "\u00b2"])
def test_what_is_no_count_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(InvalidInput, match="SHIPWAY_SPARE_IMAGES must be a whole number"):
        RunnerSettings.from_env({**REQUIRED, "SHIPWAY_SPARE_IMAGES": raw})
