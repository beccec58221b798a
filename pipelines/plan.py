"""From a validated pipeline file to the jobs of one pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.spec import PipelineSpec


@dataclass(frozen=True)
class JobDraft:
    """A job as the pipeline file declares it, before it is stored."""

    name: str
    stage: str
    stage_index: int
    image: str
    script: tuple[str, ...]
    variables: dict[str, str]
    timeout_seconds: int
    queue: str


def plan_jobs(spec: PipelineSpec) -> list[JobDraft]:
    """One draft per job, in stage order, then in file order within a stage."""
    drafts = []
    for name, job in spec.jobs.items():
        image = job.image or spec.image
        if image is None:  # parse_spec refuses this already; kept for type narrowing
            raise ValueError(f"job {name} has no image")
        drafts.append(
            JobDraft(
                name=name,
                stage=job.stage,
                stage_index=spec.stages.index(job.stage),
                image=image,
                script=tuple(job.script),
                variables={**spec.variables, **job.variables},
                timeout_seconds=job.timeout or spec.timeout,
                queue=job.queue,
            )
        )
    drafts.sort(key=lambda draft: draft.stage_index)
    return drafts
