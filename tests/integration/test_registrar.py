"""The registrar against a real etcd: registered with a lease while its check passes,
deleted at once when the check fails and when it is stopped (SIGTERM's path)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runners.discovery.registrar import Registrar, RegistrarSettings, healthy, instance_key
from tests.support.etcd import EtcdServer
from tests.support.nginx import Backend, running_backends
from tests.support.services import free_port, wait_until


@pytest.fixture
def backend() -> Iterator[Backend]:
    with running_backends("one") as started:
        yield started[0]


def registered(etcd: EtcdServer, key: str) -> str | None:
    values = etcd.client().get(key)
    return values[0].decode() if values else None


def test_settings_and_keys() -> None:
    assert instance_key("hello_STAGING", "10.0.0.5:20001") == "/hello_STAGING/10.0.0.5-20001"
    with pytest.raises(ValueError, match="SHIPWAY_SERVICE, SHIPWAY_CHECK not set"):
        RegistrarSettings.from_env({"SHIPWAY_ETCD_URL": "x", "SHIPWAY_ADVERTISE": "1.2.3.4:5"})


def test_checks_over_http_and_tcp(backend: Backend) -> None:
    assert healthy(f"http://{backend.address}/", timeout=1)
    assert healthy(f"tcp://{backend.address}", timeout=1)
    closed = free_port()
    assert not healthy(f"tcp://127.0.0.1:{closed}", timeout=1)
    assert not healthy(f"http://127.0.0.1:{closed}/", timeout=1)


def test_registered_while_healthy_and_deleted_at_once(etcd: EtcdServer, backend: Backend) -> None:
    settings = RegistrarSettings(
        etcd_url=etcd.url,
        service="hello_STAGING",
        advertise=backend.address,
        check=f"http://{backend.address}/",
        interval=0.1,
        failures=2,
        ttl=5,
    )
    registrar = Registrar(settings)
    thread = threading.Thread(target=registrar.run, daemon=True)
    thread.start()
    try:
        key = f"/hello_STAGING/{backend.instance_id}"
        wait_until(lambda: registered(etcd, key) == backend.address, 30, "registered")
        (_, meta) = etcd.client().get(key, metadata=True)[0]
        assert int(meta["lease"]) != 0  # bound to a lease: gone if the registrar dies

        backend.stop()  # the instance stops answering: deleted after two failed checks
        wait_until(lambda: registered(etcd, key) is None, 30, "deleted once unhealthy")
    finally:
        registrar.stop()
        thread.join(30)


def test_stopping_deletes_the_key_at_once(etcd: EtcdServer, backend: Backend) -> None:
    settings = RegistrarSettings(
        etcd_url=etcd.url,
        service="hello_STAGING",
        advertise=backend.address,
        check=f"tcp://{backend.address}",
        interval=0.1,
    )
    registrar = Registrar(settings)
    thread = threading.Thread(target=registrar.run, daemon=True)
    thread.start()
    key = f"/hello_STAGING/{backend.instance_id}"
    wait_until(lambda: registered(etcd, key) is not None, 30, "registered")
    registrar.stop()  # what SIGTERM does
    thread.join(30)
    assert registered(etcd, key) is None
