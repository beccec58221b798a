"""Protected environments' settings, the approvals given to releases, and testers'
verdicts on them."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.protection import (
    PROTECTED_BY_DEFAULT,
    Approval,
    Decision,
    Protection,
    Verdict,
)
from pipelines.roles import Role
from server.store.database import read_only
from server.store.tables import (
    environment_protections,
    release_approvals,
    release_verdicts,
    utcnow,
)


class ProtectionRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    def of(self, project_id: int, environment: str) -> Protection | None:
        """How the environment is protected; None when it is not."""
        table = environment_protections
        with self.reads.begin() as conn:
            row = conn.execute(
                sa.select(table).where(
                    (table.c.project_id == project_id) & (table.c.environment == environment)
                )
            ).first()
        if row is None:
            return Protection() if environment in PROTECTED_BY_DEFAULT else None
        if not row.protected:
            return None
        return Protection(
            row.approvals,
            Role(row.approver_role),
            row.self_approval,
            row.valid_minutes,
            row.verdict_from,
        )

    def set(
        self, project_id: int, environment: str, protection: Protection | None, actor: str
    ) -> None:
        """Protect the environment so (None: leave it unprotected, even production)."""
        given = protection or Protection()
        values = {
            "protected": protection is not None,
            "approvals": given.approvals,
            "approver_role": given.approver_role.value,
            "self_approval": given.self_approval,
            "valid_minutes": given.valid_minutes,
            "verdict_from": given.verdict_from,
            "updated_by": actor,
            "updated_at": utcnow(),
        }
        table = environment_protections
        key = (table.c.project_id == project_id) & (table.c.environment == environment)
        with self.engine.begin() as conn:
            if conn.execute(table.update().where(key).values(values)).rowcount == 0:
                conn.execute(
                    table.insert().values(
                        {**values, "project_id": project_id, "environment": environment}
                    )
                )

    def add_decision(self, release_id: int, user: str, decision: Decision, comment: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                release_approvals.insert().values(
                    release_id=release_id,
                    user=user,
                    decision=decision.value,
                    comment=comment,
                    at=utcnow(),
                )
            )

    def decisions(self, release_id: int) -> list[Approval]:
        table = release_approvals
        query = sa.select(table).where(table.c.release_id == release_id).order_by(table.c.id)
        with self.reads.begin() as conn:
            return [
                Approval(row.user, Decision(row.decision), row.comment, row.at)
                for row in conn.execute(query)
            ]

    def add_verdict(self, release_id: int, user: str, passed: bool, comment: str) -> Verdict:
        at = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                release_verdicts.insert().values(
                    release_id=release_id, user=user, passed=passed, comment=comment, at=at
                )
            )
        return Verdict(release_id, user, passed, comment, at)

    def verdicts(self, release_id: int) -> list[Verdict]:
        """A release's verdicts, the newest last."""
        table = release_verdicts
        query = sa.select(table).where(table.c.release_id == release_id).order_by(table.c.id)
        with self.reads.begin() as conn:
            return [
                Verdict(row.release_id, row.user, row.passed, row.comment, row.at)
                for row in conn.execute(query)
            ]
