"""How the Redis driver lays out keys, list elements and dead-letter entries.

Keys (SPEC §5): ready list ``queue:{name}``, in-flight sorted set ``queue:{name}:processing``
scored by lease deadline, delayed sorted set ``queue:{name}:delayed`` scored by due time,
dead-letter list ``queue:{name}:dead`` (oldest first); for monitoring, completed tasks
``queue:{name}:completed`` (a list, newest first, trimmed to the driver's ``completed_limit``,
JSON elements) and live workers in the hash ``asynctasq:workers`` (worker id ->
``<heartbeat_ms>:<ttl_ms>:<JSON>``, server clock; an entry past its ttl is dropped by the
next reader, and the hash expires with the longest ttl).

A list element is a small driver header followed by the message body, unchanged::

    <id>:<vt_ms>:<count>:<body>

``id`` makes every stored message distinct (two equal bodies must never collapse into one
member of the processing set); ``vt_ms`` is the lease length in milliseconds, read by the
claim script; ``count`` is how many times the element has been delivered, raised by the
claim script. The body is never decoded by the driver.

An element someone else pushed without such a header is claimed with a synthesized one
(a fresh id, :data:`FOREIGN_LEASE_MS`, count 1), its whole bytes being the body; the worker
then dead-letters it as undecodable (:mod:`asynctasq.drivers.redis_scripts`).

A dead-letter entry is a msgpack map of its fields plus ``vt_ms`` (so a requeued message keeps
its lease length), as :mod:`asynctasq.drivers.dead_entry_format` packs it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re

import attrs

from asynctasq.drivers.protocol import CompletedTask, Delivery, WorkerInfo

GRABS_KEY = "asynctasq:grabs"
"""The grab registry: a sorted set of grab list keys scored by when they lapse (server ms)."""

WORKERS_KEY = "asynctasq:workers"
"""The hash of live workers: worker id -> ``<heartbeat_ms>:<ttl_ms>:<JSON WorkerInfo>``."""

_SUFFIX_CONTENTS = {
    ":processing": "in-flight tasks",
    ":delayed": "delayed tasks",
    ":dead": "dead letters",
    ":completed": "completed tasks",
}
"""What the driver keeps under each of :data:`SUFFIXES`, for the refusal message."""

SUFFIXES = tuple(_SUFFIX_CONTENTS)
"""Key suffixes after ``queue:{name}`` (the ready list has none)."""


def queue_name_problem(queue: str) -> str | None:
    """Return why ``queue`` cannot be a Redis task queue, or ``None`` when it can.

    A name ending in one of :data:`SUFFIXES` is refused: its ready list ``queue:{name}``
    would be another queue's key (``a:dead`` is queue ``a``'s dead-letter list, so
    dispatching there stored tasks among ``a``'s dead letters, and a worker serving it
    consumed them; ``a:processing`` is a sorted set, and pushing onto it failed with
    ``WRONGTYPE``). With those refused, no two queue names share a key.
    """
    for suffix, contents in _SUFFIX_CONTENTS.items():
        if queue.endswith(suffix):
            return (
                f"names ending in {suffix!r} are taken: the Redis driver keeps each queue's "
                f"{contents} under 'queue:<name>{suffix}', so this name's list would be "
                f"the {contents} of queue {queue[: -len(suffix)]!r}"
            )
    return None


def ready_key(queue: str) -> str:
    """Return the ready list key of ``queue``."""
    return f"queue:{queue}"


def processing_key(queue: str) -> str:
    """Return the in-flight sorted set key of ``queue``."""
    return f"queue:{queue}:processing"


def delayed_key(queue: str) -> str:
    """Return the delayed sorted set key of ``queue``."""
    return f"queue:{queue}:delayed"


def dead_key(queue: str) -> str:
    """Return the dead-letter list key of ``queue``."""
    return f"queue:{queue}:dead"


def completed_key(queue: str) -> str:
    """Return the completed-task list key of ``queue``."""
    return f"queue:{queue}:completed"


def grab_key(nonce: bytes, queue: str) -> str:
    """Return the grab list of one driver instance (``nonce``) for ``queue``.

    An idle worker's ``BLMOVE`` moves a ready element there, so it is this worker's alone
    before the lease is written (:mod:`asynctasq.drivers.redis_wakeup`). The name is
    outside ``queue:`` so the queue catalog never lists it.
    """
    return f"asynctasq:grab:{nonce.decode()}:{queue}"


CLAIM_RECORD_MS = 3_600_000
"""How long a driver's claim record outlives its last claim (ms): longer than a copy of a
claim call can plausibly sit in a stalled connection before reaching the server."""


def claim_key(nonce: bytes) -> str:
    """Return the claim record of one driver instance (``nonce``).

    The claim script keeps there the number and result of the driver's last claim, so a
    claim call repeated after its reply was lost gets the same deliveries again, and a late
    copy of an earlier call moves nothing (:data:`asynctasq.drivers.redis_scripts.CLAIM`).
    """
    return f"asynctasq:claim:{nonce.decode()}"


def queue_of_processing(key: bytes) -> str:
    """Return the queue name of an in-flight set key ``queue:{name}:processing`` (bytes)."""
    return key[len(b"queue:") : -len(b":processing")].decode()


def queue_of(key: str) -> str | None:
    """Return the queue name a ``queue:...`` key belongs to, or ``None`` for other keys.

    A name that itself ends in one of :data:`SUFFIXES` (``a:dead``) cannot be told from
    that key of another queue; such a key is taken as the suffix form.
    """
    if not key.startswith("queue:"):
        return None
    rest = key[len("queue:") :]
    for suffix in SUFFIXES:
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[: -len(suffix)]
    return rest or None


def pack_worker(worker: WorkerInfo) -> bytes:
    """Return the JSON of ``worker`` without ``last_heartbeat`` (the server stamps it)."""
    fields = attrs.asdict(worker)
    del fields["last_heartbeat"]
    return json.dumps(fields, separators=(",", ":")).encode()


def unpack_worker(value: bytes) -> WorkerInfo:
    """Return the worker stored as ``<heartbeat_ms>:<ttl_ms>:<JSON>``.

    Raises:
        ValueError: ``value`` is not in that form.

    """
    try:
        beat_ms, _, text = value.split(b":", 2)
        fields = json.loads(text)
        fields["queues"] = tuple(fields["queues"])
        return WorkerInfo(**fields, last_heartbeat=int(beat_ms) / 1000)
    except Exception as exc:
        raise ValueError(f"not a worker record ({type(exc).__name__}: {exc})") from exc


def pack_completed(task: CompletedTask) -> bytes:
    """Return the JSON of a completed task."""
    return json.dumps(attrs.asdict(task), separators=(",", ":")).encode()


def unpack_completed(value: bytes) -> CompletedTask:
    """Return the completed task stored as JSON.

    Raises:
        ValueError: ``value`` is not a completed-task record.

    """
    try:
        return CompletedTask(**json.loads(value))
    except Exception as exc:
        raise ValueError(f"not a completed-task record ({type(exc).__name__}: {exc})") from exc


FOREIGN_LEASE_MS = 3_600_000
"""The lease given to an element claimed without a header: the default visibility timeout.

Source: seed "Task Defaults Configuration" (visibility timeout default 3600 s)."""


def to_ms(seconds: float) -> int:
    """Return ``seconds`` as whole milliseconds, rounded up (a delay is never shortened)."""
    return math.ceil(seconds * 1000)


class ElementIds:
    """Makes element ids unique across processes: a random prefix and a counter, in hex."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex().encode()
        self._counter = itertools.count(1)

    def element(self, body: bytes, visibility_timeout_seconds: float, count: int = 0) -> bytes:
        """Return the list element for ``body``: header (fresh id, lease ms, count) + body."""
        header = b"%s%x:%d:%d:" % (
            self._prefix,
            next(self._counter),
            max(1, to_ms(visibility_timeout_seconds)),
            count,
        )
        return header + body

    def nonce(self) -> bytes:
        """Return a fresh id prefix for the ids a script synthesizes (it appends ``g<n>``)."""
        return b"%s%x" % (self._prefix, next(self._counter))


def delivery(queue: str, member: bytes) -> Delivery:
    """Return the :class:`Delivery` for a leased element; the element itself is the receipt."""
    _, vt_ms, count, body = member.split(b":", 3)
    return Delivery(queue, body, member, int(count), int(vt_ms) / 1000)


_HEADER = re.compile(rb"([^:]{1,64}):([0-9]{1,12}):([0-9]{1,12}):")


def next_member(element: bytes, fresh_id: bytes) -> tuple[bytes, int]:
    """Return the leased member for a ready ``element`` and its lease (ms), as CLAIM makes it.

    The count in the header goes up by one; an element without a valid header (another
    program's) gets ``fresh_id``, :data:`FOREIGN_LEASE_MS` and count 1, its whole bytes
    being the body. Mirrors ``header``/``recount`` in :mod:`asynctasq.drivers.redis_scripts`.
    """
    found = _HEADER.match(element)
    if found is None or int(found[2]) < 1:
        return b"%s:%d:1:%s" % (fresh_id, FOREIGN_LEASE_MS, element), FOREIGN_LEASE_MS
    ident, vt_ms, count = found.groups()
    rest = element[found.end() :]
    return b"%s:%s:%d:%s" % (ident, vt_ms, int(count) + 1, rest), int(vt_ms)


def lease_ms(member: bytes) -> int:
    """Return the lease length in milliseconds written in an element's header."""
    return int(member.split(b":", 2)[1])
