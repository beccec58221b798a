"""Traffic weights in etcd (L6): implements ``pipelines.ports.TrafficWeights``.

The server reads which instances of a service are registered and writes their
weights under ``/shipway/weights/<app>_<ENV>/<ip>-<port>``, which the confd agent
renders as nginx ``weight=`` (0: ``down``).
"""

from __future__ import annotations

from runners.discovery.etcd_gateway import EtcdGateway, b64, prefix_range, text

WEIGHTS_PREFIX = "/shipway/weights/"


class EtcdWeights:
    def __init__(self, url: str) -> None:
        self.etcd = EtcdGateway(url)

    def registered(self, service: str) -> list[str]:
        """The addresses (``ip:port``) of the instances registered now."""
        answer = self.etcd.post("/kv/range", prefix_range(f"/{service}/"))
        return sorted(text(item.get("value", "")) for item in answer.get("kvs") or [])

    def set_weights(self, service: str, weights: dict[str, int]) -> None:
        """Weights by address, written in one transaction."""
        success = [
            {
                "request_put": {
                    "key": b64(f"{WEIGHTS_PREFIX}{service}/{address.replace(':', '-')}"),
                    "value": b64(str(weight)),
                }
            }
            for address, weight in sorted(weights.items())
        ]
        self.etcd.post("/kv/txn", {"compare": [], "success": success, "failure": []})

    def clear(self, service: str) -> None:
        """Every instance back to an equal share."""
        self.etcd.post("/kv/deleterange", prefix_range(f"{WEIGHTS_PREFIX}{service}/"))
