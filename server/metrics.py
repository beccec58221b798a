"""``GET /metrics`` (X4): Prometheus's text format, read from the database and Redis
when scraped, so the figures survive restarts and agree with the API.

    shipway_pipelines{project,status}           pipelines, by their status now
    shipway_jobs{status}                        jobs, by their status now
    shipway_releases{project,environment,status}
    shipway_runners{state}                      online / offline by heartbeat
    shipway_queue_tasks{queue}                  tasks waiting in each RQ queue
    shipway_pipeline_duration_seconds           histogram, pipelines ended in the last hour
    shipway_gitlab_reports_failing              reports GitLab has not taken yet
    shipway_up{component}                       1 when the database / Redis answers
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pipelines.errors import ExternalError
from pipelines.liveness import is_online
from server.queue import RqJobQueue
from server.store import Store
from server.store.tables import utcnow

DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
DURATION_WINDOW = timedelta(hours=1)


class ShipwayCollector(Collector):
    def __init__(self, store: Store, queue: RqJobQueue) -> None:
        self.store = store
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        stats = self.store.stats
        pipelines = GaugeMetricFamily(
            "shipway_pipelines", "Pipelines by project and status", labels=["project", "status"]
        )
        for (project, status), count in sorted(stats.pipelines_by_status().items()):
            pipelines.add_metric([project, status], count)
        yield pipelines

        jobs = GaugeMetricFamily("shipway_jobs", "Jobs by status", labels=["status"])
        for status, count in sorted(stats.jobs_by_status().items()):
            jobs.add_metric([status], count)
        yield jobs

        releases = GaugeMetricFamily(
            "shipway_releases",
            "Releases by project, environment and status",
            labels=["project", "environment", "status"],
        )
        for key, count in sorted(stats.releases_by_status().items()):
            releases.add_metric(list(key), count)
        yield releases

        now = utcnow()
        online = sum(is_online(runner, now) for runner in self.store.runners.all())
        total = len(self.store.runners.all())
        runners = GaugeMetricFamily("shipway_runners", "Runners by heartbeat", labels=["state"])
        runners.add_metric(["online"], online)
        runners.add_metric(["offline"], total - online)
        yield runners

        up = GaugeMetricFamily("shipway_up", "Whether a service answers", labels=["component"])
        up.add_metric(["database"], 1)  # the queries above answered
        try:
            lengths = self.queue.lengths()
            up.add_metric(["redis"], 1)
        except ExternalError:
            lengths = {}
            up.add_metric(["redis"], 0)
        yield up
        queued = GaugeMetricFamily(
            "shipway_queue_tasks", "Tasks waiting in each queue", labels=["queue"]
        )
        for name, count in sorted(lengths.items()):
            queued.add_metric([name], count)
        yield queued

        durations = sorted(stats.pipeline_durations(now - DURATION_WINDOW))
        buckets = [
            (f"{bound:g}", bisect.bisect_right(durations, bound)) for bound in DURATION_BUCKETS
        ]
        buckets.append(("+Inf", len(durations)))
        yield HistogramMetricFamily(
            "shipway_pipeline_duration_seconds",
            "Creation to end of the pipelines that ended in the last hour",
            buckets=buckets,
            sum_value=sum(durations),
        )

        failing = GaugeMetricFamily(
            "shipway_gitlab_reports_failing", "Reports GitLab has not taken yet"
        )
        failing.add_metric([], stats.gitlab_reports_failing())
        yield failing


def render(store: Store, queue: RqJobQueue) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShipwayCollector(store, queue))
    return generate_latest(registry)
