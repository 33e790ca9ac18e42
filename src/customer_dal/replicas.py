# generated from src/customer_dal/replicas_async.py by tools/async_to_sync.py; do not edit
"""When a read goes to the hot standby, and what happens when the standby is away.

A pool made with a replica (``replica_dsn=...`` or ``DATABASE_REPLICA_URL``)
holds a second pool of connections to a hot standby. The pooled repositories
(:mod:`customer_dal.routing`) run their read-only calls through
:meth:`ReadReplica.run`:

* **The standby answers:** the read runs there.
* **It does not** (no connection within ``wait`` seconds, or the connection is
  lost during the read): the read runs on the primary instead, and the outage
  is logged once, as a WARNING on the ``customer_dal.replicas`` logger, with
  the server and the reason. A read is safe to run twice: nothing is lost.
* **During an outage** reads go straight to the primary, without waiting for
  the standby; every ``retry_after`` seconds one read tries the standby again
  with a new pool (it alone may wait up to ``wait`` seconds). When the standby
  answers, an INFO line says so and reads go back to it.

A standby serves what it has replayed, which may lag behind the primary: a
caller who must see its own write reads from the primary (``on_primary()``).

The lock guards a few assignments and is never held across an ``await``: a
thread lock serves the async flavour as well as the threads of the sync one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg_pool import PoolClosed

from .errors import DatabaseUnavailableError

if TYPE_CHECKING:
    from .pools import Pool

__all__ = ["ReadReplica"]

T = TypeVar("T")
_log = logging.getLogger("customer_dal.replicas")


class ReadReplica:
    """A standby's pool, and whether the standby is answering (shared by all callers).

    During an outage the pool is left alone (psycopg_pool keeps reconnecting,
    ever more slowly); the periodic try opens a pool of its own, which takes
    the old one's place when the standby answers it.
    """

    def __init__(
        self,
        pool: Pool,
        open_pool: Callable[[], Pool],
        *,
        wait: float,
        retry_after: float,
    ) -> None:
        self.pool = pool
        self._open_pool = open_pool
        self.wait = wait
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._down = False
        self._next_try = 0.0

    def run(
        self,
        read: Callable[[psycopg.Connection[Any]], T],
        fallback: Callable[[Callable[[psycopg.Connection[Any]], T]], T],
    ) -> T:
        """``read`` on a standby connection, else ``fallback(read)`` (on the primary)."""
        pool = self._pool_to_try()
        if pool is not None:
            try:
                with pool.connection(timeout=self.wait) as conn:
                    result = read(conn)
            except (DatabaseUnavailableError, PoolClosed) as exc:
                self._went_away(pool, exc)
            else:
                if pool is not self.pool:
                    self._came_back(pool)
                return result
        return fallback(read)

    def _pool_to_try(self) -> Pool | None:
        """The pool to read from; a new one when it is time to try again; None meanwhile."""
        if not self._down:  # the hot path: no lock while the standby answers
            return self.pool
        with self._lock:
            now = time.monotonic()
            if now < self._next_try:
                return None
            self._next_try = now + self.retry_after  # this caller alone tries
        return self._open_pool()

    def _went_away(self, pool: Pool, exc: Exception) -> None:
        if pool is not self.pool:  # a trial that failed, or a pool already replaced
            pool.close()
            return
        with self._lock:
            self._next_try = time.monotonic() + self.retry_after
            if self._down:
                return
            self._down = True
        _log.warning(
            "read replica %s is unreachable, reads go to the primary until it answers: %s",
            pool.target,
            exc,
        )

    def _came_back(self, trial: Pool) -> None:
        with self._lock:
            replaced, self.pool = self.pool, trial
            self._down = False
        replaced.close()
        _log.info("read replica %s answers again; reads go to it", trial.target)

    def close(self) -> None:
        self.pool.close()
