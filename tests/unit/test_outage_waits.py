"""The pure parts of waiting out the registry and etcd: which registry an image
reference names, and how long an nginx agent was silent while etcd could hear it."""

from __future__ import annotations

import pytest

from runners.discovery.traffic import silence
from runners.registry import registry_of


@pytest.mark.parametrize(
    ("reference", "registry"),
    [
        ("127.0.0.1:5000/app@sha256:abc", "127.0.0.1:5000"),
        ("registry.example.com/team/app:1", "registry.example.com"),
        ("localhost/app:1", "localhost"),
        ("[::1]:5000/app:1", "[::1]:5000"),
        ("shipway/busybox:1", None),  # Docker Hub's short names
        ("busybox", None),
    ],
)
def test_the_registry_of_a_reference(reference: str, registry: str | None) -> None:
    assert registry_of(reference) == registry


def test_silence_leaves_out_the_time_etcd_was_away() -> None:
    assert silence(100.0, 130.0, []) == 30.0
    assert silence(100.0, 200.0, [(105.0, 185.0)]) == 20.0  # reported 5 s before it went
    assert silence(100.0, 200.0, [(50.0, 90.0)]) == 100.0  # an outage before the report
    assert silence(100.0, 200.0, [(90.0, 110.0), (150.0, 160.0)]) == 80.0
    assert silence(100.0, 200.0, [(190.0, 250.0)]) == 90.0  # still away at ``now``
