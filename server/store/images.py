"""Images the pipelines built and pushed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pipelines.model import BuiltImage
from server.store.tables import images, utcnow


def _image(row: sa.Row[Any]) -> BuiltImage:
    return BuiltImage(
        pipeline_id=row.pipeline_id,
        job_id=row.job_id,
        repository=row.repository,
        tag=row.tag,
        digest=row.digest,
        middleware=row.middleware,
        pushed_bytes=row.pushed_bytes,
        app_layer_bytes=row.app_layer_bytes,
        runtime_mounts=tuple(row.runtime_mounts),
        created_at=row.created_at,
    )


class ImageRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, image: BuiltImage) -> BuiltImage:
        """Record a pushed image; a resend for the same job replaces nothing."""
        with self.engine.begin() as conn:
            seen = conn.execute(sa.select(images).where(images.c.job_id == image.job_id)).first()
            if seen is not None:
                return _image(seen)
            conn.execute(
                images.insert().values(
                    pipeline_id=image.pipeline_id,
                    job_id=image.job_id,
                    repository=image.repository,
                    tag=image.tag,
                    digest=image.digest,
                    middleware=image.middleware,
                    pushed_bytes=image.pushed_bytes,
                    app_layer_bytes=image.app_layer_bytes,
                    runtime_mounts=list(image.runtime_mounts),
                    created_at=utcnow(),
                )
            )
            return _image(
                conn.execute(sa.select(images).where(images.c.job_id == image.job_id)).one()
            )

    def of_pipeline(self, pipeline_id: int) -> list[BuiltImage]:
        query = sa.select(images).where(images.c.pipeline_id == pipeline_id).order_by(images.c.id)
        with self.engine.begin() as conn:
            return [_image(row) for row in conn.execute(query)]

    def by_reference(self, reference: str) -> BuiltImage | None:
        """The newest image pushed as ``repository@digest``; None for any other
        reference (an image Shipway did not build)."""
        repository, _, digest = reference.partition("@")
        if not digest:
            return None
        query = (
            sa.select(images)
            .where(images.c.repository == repository, images.c.digest == digest)
            .order_by(images.c.id.desc())
            .limit(1)
        )
        with self.engine.begin() as conn:
            row = conn.execute(query).first()
        return _image(row) if row is not None else None
