"""People: users, the roles they hold, and their API tokens (stored as digests only).

A token is made here and shown once: the store keeps its SHA-256, and a request's
token is looked up by the digest of what it sent. Tokens are 256 random bits, so a
fast hash is as safe as a slow one and keeps every request's check one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from pipelines.errors import Conflict, NotFound
from pipelines.roles import Grant, Role
from server.store.database import read_only
from server.store.tables import api_tokens, projects, role_grants, runner_tokens, users, utcnow

TOKEN_PREFIX = "swp_"  # noqa: S105 - says what a leaked string is, as GitLab's "glpat-" does
# How often a token's last use is written down: not on every request.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    email: str | None
    disabled: bool
    created_at: datetime
    grants: tuple[Grant, ...] = ()
    has_password: bool = False


@dataclass(frozen=True)
class TokenEntry:
    """What is shown of a token: never the token."""

    id: int
    user: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    # --- users and their roles ----------------------------------------------------------

    def add(self, name: str, email: str | None, grants: list[Grant]) -> User:
        with self.engine.begin() as conn:
            taken = conn.execute(sa.select(users.c.id).where(users.c.name == name)).first()
            if taken is not None:
                raise Conflict(f"user {name} exists")
            user_id = conn.execute(
                users.insert()
                .values(name=name, email=email, created_at=utcnow())
                .returning(users.c.id)
            ).scalar_one()
            self._grant(conn, int(user_id), grants)
        return self.get(name)

    def grant(self, name: str, grants: list[Grant]) -> User:
        with self.engine.begin() as conn:
            self._grant(conn, self._id(conn, name), grants)
        return self.get(name)

    def revoke_grants(self, name: str, grants: list[Grant]) -> User:
        with self.engine.begin() as conn:
            user_id = self._id(conn, name)
            for grant in grants:
                conn.execute(
                    role_grants.delete().where(
                        (role_grants.c.user_id == user_id)
                        & (role_grants.c.role == grant.role.value)
                        & _same_project(grant.project_id)
                    )
                )
        return self.get(name)

    def set_password_hash(self, name: str, password_hash: str) -> None:
        with self.engine.begin() as conn:
            user_id = self._id(conn, name)
            conn.execute(
                users.update().where(users.c.id == user_id).values(password_hash=password_hash)
            )

    def password_hash(self, name: str) -> str | None:
        with self.reads.begin() as conn:
            row = conn.execute(
                sa.select(users.c.password_hash).where(
                    (users.c.name == name) & users.c.disabled_at.is_(None)
                )
            ).first()
        return None if row is None else row.password_hash

    def disable(self, name: str) -> User:
        """A disabled user's tokens stop working at once; nothing of theirs is deleted."""
        with self.engine.begin() as conn:
            user_id = self._id(conn, name)
            conn.execute(
                users.update()
                .where((users.c.id == user_id) & users.c.disabled_at.is_(None))
                .values(disabled_at=utcnow())
            )
        return self.get(name)

    def get(self, name: str) -> User:
        found = self._users(users.c.name == name)
        if not found:
            raise NotFound(f"no user named {name}")
        return found[0]

    def all(self) -> list[User]:
        return self._users(sa.true())

    def _users(self, where: sa.ColumnElement[bool]) -> list[User]:
        with self.reads.begin() as conn:
            rows = conn.execute(sa.select(users).where(where).order_by(users.c.name)).all()
            ids = [row.id for row in rows]
            grants: dict[int, list[Grant]] = {user_id: [] for user_id in ids}
            for grant in conn.execute(
                sa.select(role_grants)
                .where(role_grants.c.user_id.in_(ids))
                .order_by(role_grants.c.role, role_grants.c.project_id)
            ):
                grants[grant.user_id].append(Grant(Role(grant.role), grant.project_id))
        return [
            User(
                row.id,
                row.name,
                row.email,
                row.disabled_at is not None,
                row.created_at,
                tuple(grants[row.id]),
                row.password_hash is not None,
            )
            for row in rows
        ]

    def project_names(self) -> dict[int, str]:
        """Project ids to names, for showing grants."""
        with self.reads.begin() as conn:
            rows = conn.execute(sa.select(projects.c.id, projects.c.name))
            return {row.id: row.name for row in rows}

    @staticmethod
    def _id(conn: sa.Connection, name: str) -> int:
        row = conn.execute(sa.select(users.c.id).where(users.c.name == name)).first()
        if row is None:
            raise NotFound(f"no user named {name}")
        return int(row.id)

    @staticmethod
    def _grant(conn: sa.Connection, user_id: int, grants: list[Grant]) -> None:
        for grant in grants:
            held = conn.execute(
                sa.select(role_grants.c.id).where(
                    (role_grants.c.user_id == user_id)
                    & (role_grants.c.role == grant.role.value)
                    & _same_project(grant.project_id)
                )
            ).first()
            if held is None:
                conn.execute(
                    role_grants.insert().values(
                        user_id=user_id, role=grant.role.value, project_id=grant.project_id
                    )
                )

    # --- tokens -------------------------------------------------------------------------

    def create_token(self, user: str, name: str, expires_at: datetime | None) -> tuple[str, int]:
        """A new token of the user: (the token, shown only now; its id)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            user_id = self._id(conn, user)
            token_id = conn.execute(
                api_tokens.insert()
                .values(
                    user_id=user_id,
                    name=name,
                    digest=digest_of(token),
                    created_at=utcnow(),
                    expires_at=expires_at,
                )
                .returning(api_tokens.c.id)
            ).scalar_one()
        return token, int(token_id)

    def tokens(self, user: str | None = None) -> list[TokenEntry]:
        query = (
            sa.select(api_tokens, users.c.name.label("user"))
            .join(users, users.c.id == api_tokens.c.user_id)
            .order_by(api_tokens.c.id)
        )
        if user is not None:
            query = query.where(users.c.name == user)
        with self.reads.begin() as conn:
            return [_token_entry(row) for row in conn.execute(query)]

    def token(self, token_id: int) -> TokenEntry:
        query = (
            sa.select(api_tokens, users.c.name.label("user"))
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.id == token_id)
        )
        with self.reads.begin() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no token {token_id}")
        return _token_entry(row)

    def revoke_token(self, token_id: int) -> TokenEntry:
        with self.engine.begin() as conn:
            conn.execute(
                api_tokens.update()
                .where((api_tokens.c.id == token_id) & api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.token(token_id)

    def holder_of(self, token: str) -> User | None:
        """The enabled user whose usable token this is; None for any other string."""
        now = utcnow()
        query = (
            sa.select(api_tokens.c.id, api_tokens.c.last_used_at, users.c.name)
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(
                (api_tokens.c.digest == digest_of(token))
                & api_tokens.c.revoked_at.is_(None)
                & (api_tokens.c.expires_at.is_(None) | (api_tokens.c.expires_at > now))
                & users.c.disabled_at.is_(None)
            )
        )
        with self.reads.begin() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            with self.engine.begin() as conn:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now)
                )
        return self.get(row.name)


@dataclass(frozen=True)
class RunnerTokenEntry:
    id: int
    runner: str
    created_at: datetime
    revoked_at: datetime | None


class RunnerTokenRepository:
    """Tokens that each speak for one runner: revoking one stops that runner only."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reads = read_only(engine)

    def create(self, runner: str) -> tuple[str, int]:
        token = TOKEN_PREFIX + "runner_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            token_id = conn.execute(
                runner_tokens.insert()
                .values(runner=runner, digest=digest_of(token), created_at=utcnow())
                .returning(runner_tokens.c.id)
            ).scalar_one()
        return token, int(token_id)

    def all(self) -> list[RunnerTokenEntry]:
        query = sa.select(runner_tokens).order_by(runner_tokens.c.id)
        with self.reads.begin() as conn:
            return [
                RunnerTokenEntry(row.id, row.runner, row.created_at, row.revoked_at)
                for row in conn.execute(query)
            ]

    def revoke(self, token_id: int) -> RunnerTokenEntry:
        with self.engine.begin() as conn:
            conn.execute(
                runner_tokens.update()
                .where((runner_tokens.c.id == token_id) & runner_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        for entry in self.all():
            if entry.id == token_id:
                return entry
        raise NotFound(f"no runner token {token_id}")

    def runner_of(self, token: str) -> str | None:
        """The runner a usable token speaks for; None for any other string."""
        query = sa.select(runner_tokens.c.runner).where(
            (runner_tokens.c.digest == digest_of(token)) & runner_tokens.c.revoked_at.is_(None)
        )
        with self.reads.begin() as conn:
            runner = conn.execute(query).scalar_one_or_none()
        return None if runner is None else str(runner)


def _same_project(project_id: int | None) -> sa.ColumnElement[bool]:
    if project_id is None:
        return role_grants.c.project_id.is_(None)
    return role_grants.c.project_id == project_id


def _token_entry(row: sa.Row[tuple[object, ...]]) -> TokenEntry:
    return TokenEntry(
        row.id,
        row.user,
        row.name,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )
