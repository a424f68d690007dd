"""The database behind the metadata store: one engine per process, transactions, errors, schema version.

SQLite (the one-machine default: `metadata.db` beside the embedded storage directory) runs in WAL
mode, so readers never wait for the writer, and every write transaction starts with
`BEGIN IMMEDIATE`: it takes the write lock first instead of upgrading a read lock, which is how two
processes on one file never deadlock. PostgreSQL serves several replicas and machines; rows that are
claimed are locked with `SELECT … FOR UPDATE [SKIP LOCKED]`. A database that cannot be reached (down,
restarting, locked past the timeout) is `Unavailable`, which every caller already waits out as it
does a storage outage; a lost race on a unique key is `Conflict`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from quakestack.config import Settings
from quakestack.errors import Conflict, FailedPrecondition, InvalidArgument, Unavailable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_FILE = "metadata.db"
ADVISORY_LOCK = 0x71756B65  # "quke": serialises schema upgrades of several replicas on one PostgreSQL


def resolve_url(settings: Settings) -> str:
    """The configured URL: QUAKESTACK_DATABASE_URL, else the file it names, else SQLite beside the storage dir."""
    if settings.database_url:
        return settings.database_url
    if settings.database_url_file:
        try:
            text = Path(settings.database_url_file).read_text().strip()
        except OSError as exc:
            raise Unavailable(f"QUAKESTACK_DATABASE_URL_FILE: cannot read {settings.database_url_file}: "
                              f"{exc.strerror}") from None
        if not text:
            raise InvalidArgument(f"QUAKESTACK_DATABASE_URL_FILE: {settings.database_url_file} is empty")
        return text
    return sqlite_url(Path(settings.storage_dir).expanduser().resolve().parent / SQLITE_FILE)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def normalise(url: str) -> URL:
    """postgres:// and postgresql:// use psycopg 3 (the driver the package installs)."""
    parsed = make_url(url)
    if parsed.get_backend_name() in ("postgres", "postgresql") and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "postgres":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidArgument(f"database {parsed.get_backend_name()!r}: expected sqlite or postgresql")
    return parsed


class Database:
    """One engine per process; `write()` and `read()` hand out connections inside a transaction."""

    def __init__(self, url: str, *, timeout_s: float = 5.0):
        self.url = normalise(url)
        self.dialect = self.url.get_backend_name()
        self.timeout_s = timeout_s
        self.engine = self._engine()
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(resolve_url(settings), timeout_s=settings.database_timeout_s)

    @property
    def safe_url(self) -> str:
        """The URL with its password masked: the only form that is ever logged or shown."""
        return self.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    # -- the engine ---------------------------------------------------------------------------
    def _engine(self) -> Engine:
        if self.dialect == "sqlite":
            path = self.url.database
            if not path or path == ":memory:":
                raise InvalidArgument("SQLite needs a file (sqlite:///path): the store is shared by processes")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(self.url, connect_args={"timeout": self.timeout_s, "check_same_thread": False},
                                      pool_size=8, max_overflow=16, pool_timeout=self.timeout_s * 6)
            _sqlite_transactions(engine, self.timeout_s)
            return engine
        return sa.create_engine(self.url, pool_pre_ping=True, pool_size=8, max_overflow=16,
                                pool_timeout=self.timeout_s * 6, pool_recycle=1800,
                                connect_args={"connect_timeout": max(1, round(self.timeout_s)),
                                              "application_name": "quakestack"})

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self.engine.dispose()
                self._closed = True

    # -- transactions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed when the block ends without error."""
        with self.errors(), self.engine.connect() as conn:
            conn = conn.execution_options(quakestack_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for everything read in the block."""
        with self.errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Driver errors as the runtime's: unreachable or locked → Unavailable, a lost unique race → Conflict."""
        try:
            yield
        except IntegrityError as exc:
            raise Conflict(f"metadata database: {_first_line(exc.orig)}") from None
        except (OperationalError, PoolTimeout) as exc:
            raise Unavailable(f"metadata database {self.safe_url} unreachable: "
                              f"{_first_line(getattr(exc, 'orig', exc))}") from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable(f"metadata database {self.safe_url}: connection lost") from None
            raise

    def ping(self) -> None:
        """One round trip: Unavailable when the database is down, refuses us, or has no schema yet."""
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- the schema ---------------------------------------------------------------------------
    def upgrade(self) -> str:
        """Bring the schema to this build's head (idempotent; one replica at a time); its revision.

        A database written by a newer build (a revision this build does not know) is refused: its rows may
        mean things this code would misread."""
        from alembic import command
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        script = ScriptDirectory.from_config(config)
        head = script.get_current_head()
        with self.exclusive(), self.errors(), self.engine.connect() as conn:
            current = _current_revision(conn)
            if current is not None and current != head:
                try:
                    script.get_revision(current)
                except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
                    raise FailedPrecondition(
                        f"metadata database {self.safe_url} has schema revision {current!r}, newer than this "
                        f"build knows (its newest is {head!r}): upgrade quakestack, or point it at another "
                        "database") from None
            if current != head:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
        return head

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One process at a time, across replicas (schema upgrades, the one-off import of object storage)."""
        if self.is_sqlite:
            lock_path = Path(str(self.url.database) + ".migrate.lock")
            with open(lock_path, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            return
        with self.errors(), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK})
                conn.commit()

    def revision(self) -> str | None:
        with self.errors(), self.engine.connect() as conn:
            return _current_revision(conn)


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        conn.rollback()
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    conn.rollback()
    return None if row is None else str(row[0])


def _sqlite_transactions(engine: Engine, timeout_s: float) -> None:
    """pysqlite's own transaction handling is off; we say BEGIN ourselves (IMMEDIATE for writes)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("quakestack_write") else "BEGIN")


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def dumps(value: Any) -> str:
    """A JSON document column: numpy scalars and arrays as plain values, anything else as text."""
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
