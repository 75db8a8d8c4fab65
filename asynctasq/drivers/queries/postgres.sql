-- PostgreSQL (asyncpg, PostgreSQL >= 14). Times are the server's: now() + intervals.
-- Statuses: 'pending' (ready once available_at <= now(), else delayed), 'leased' (held by a
-- consumer until locked_until, under the token lease_id), 'completed' (kept only with
-- repository.keep_completed_tasks). Dead letters live in their own table.
-- Queries run through execute_many take arrays, one element per row (unnest).
-- Claims, acks, releases, extends and reclaims commit without waiting for the WAL flush
-- (set_config('synchronous_commit', 'off', true): this statement's transaction only). If
-- the server itself crashes in the next moment such a change may be forgotten: the row is
-- then delivered again (at least once), never lost. Enqueue, retry and dead-lettering
-- always wait for the flush.

-- name: lock_schema
SELECT pg_advisory_xact_lock(hashtext({queue_table_text}))

-- name: unlock_schema
SELECT 1

-- name: schema_objects
-- One label per object that exists, as asynctasq migrate shows it ('index jobs.q_ready').
-- Lookups are qualified with the table's schema (an index lives in its table's schema).
SELECT o.label FROM (VALUES
    ('table ' || {queue_table_label}, to_regclass({queue_table_text})),
    ('index ' || {ready_index_label}, to_regclass({ready_index_text})),
    ('index ' || {leased_index_label}, to_regclass({leased_index_text})),
    ('table ' || {dead_letter_table_label}, to_regclass({dead_letter_table_text})),
    ('index ' || {dead_index_label}, to_regclass({dead_index_text})),
    ('table ' || {workers_table_label}, to_regclass({workers_table_text})),
    ('table ' || {completed_table_label}, to_regclass({completed_table_text})),
    ('index ' || {completed_index_label}, to_regclass({completed_index_text}))
) AS o(label, found)
WHERE o.found IS NOT NULL
UNION ALL
SELECT 'function ' || {notify_function_label}
WHERE to_regprocedure({notify_function_text} || '()') IS NOT NULL
UNION ALL
SELECT 'trigger ' || {notify_trigger_label}
FROM pg_trigger
WHERE tgname = {notify_trigger_name} AND tgrelid = to_regclass({queue_table_text})

-- name: migrate_1_queue_table
CREATE TABLE IF NOT EXISTS {queue_table} (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_name TEXT NOT NULL,
    task_id TEXT NOT NULL DEFAULT '',
    payload BYTEA NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'leased', 'completed')),
    available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until TIMESTAMPTZ,
    lease_id BIGINT,
    current_attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,
    visibility_timeout_seconds DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ
)

-- name: migrate_2_ready_index
-- Serves the claim: ready rows of one queue in (available_at, id) order.
CREATE INDEX IF NOT EXISTS {ready_index}
    ON {queue_table} (queue_name, available_at, id) WHERE status = 'pending'

-- name: migrate_3_leased_index
-- Serves the reclaim of expired leases.
CREATE INDEX IF NOT EXISTS {leased_index}
    ON {queue_table} (locked_until) WHERE status = 'leased'

-- name: migrate_4_dead_letter_table
CREATE TABLE IF NOT EXISTS {dead_letter_table} (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_name TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_name TEXT NOT NULL,
    payload BYTEA NOT NULL,
    error_type TEXT NOT NULL,
    error_message TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    visibility_timeout_seconds DOUBLE PRECISION NOT NULL,
    failed_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)

-- name: migrate_5_dead_index
CREATE INDEX IF NOT EXISTS {dead_index} ON {dead_letter_table} (queue_name, id)

-- name: migrate_6_notify_function
-- Wakes idle consumers (LISTEN on the channel passed by the trigger) when a row becomes
-- pending: enqueued, retried, released or reclaimed. NOTIFY is sent at commit and
-- deduplicated per transaction.
CREATE OR REPLACE FUNCTION {notify_function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], NEW.queue_name);
    RETURN NULL;
END
$$

-- name: migrate_7_notify_trigger
CREATE OR REPLACE TRIGGER {notify_trigger}
    AFTER INSERT OR UPDATE OF status ON {queue_table}
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION {notify_function}({channel})

-- name: migrate_8_workers_table
-- The worker registry: one row per worker, replaced by each heartbeat; a row whose
-- expires_at passed is a worker that died without stopping (not listed, pruned later).
CREATE TABLE IF NOT EXISTS {workers_table} (
    worker_id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    driver TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    last_heartbeat TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    active INTEGER NOT NULL,
    processed BIGINT NOT NULL,
    failed BIGINT NOT NULL
)

-- name: migrate_9_completed_table
-- Completed-task records (repository.keep_completed_tasks), newest = highest id.
CREATE TABLE IF NOT EXISTS {completed_table} (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_name TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    dispatched_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL
)

-- name: migrate_10_completed_index
CREATE INDEX IF NOT EXISTS {completed_index} ON {completed_table} (queue_name, id)

-- name: check_queue_table
SELECT id, queue_name, task_id, payload, status, available_at, locked_until, lease_id,
    current_attempt, max_attempts, visibility_timeout_seconds, created_at, updated_at,
    completed_at
FROM {queue_table} WHERE false

-- name: check_dead_letter_table
SELECT id, queue_name, task_id, task_name, payload, error_type, error_message, attempts,
    visibility_timeout_seconds, failed_at, created_at
FROM {dead_letter_table} WHERE false

-- name: check_workers_table
SELECT worker_id, hostname, pid, queues, concurrency, driver, started_at, last_heartbeat,
    expires_at, active, processed, failed
FROM {workers_table} WHERE false

-- name: check_completed_table
SELECT id, queue_name, task_id, task_name, attempt, worker_id, dispatched_at, started_at,
    completed_at, duration_ms
FROM {completed_table} WHERE false

-- name: enqueue
INSERT INTO {queue_table} (queue_name, task_id, payload, available_at, visibility_timeout_seconds)
SELECT r.queue, r.task_id, r.payload, now() + make_interval(secs => r.delay), r.vt
FROM unnest(:queue::text[], :task_id::text[], :payload::bytea[], :delay::float8[],
            :visibility_timeout::float8[])
    WITH ORDINALITY AS r(queue, task_id, payload, delay, vt, n)
ORDER BY r.n

-- name: claim
WITH picked AS (
    SELECT id FROM {queue_table}
    WHERE queue_name = :queue AND status = 'pending' AND available_at <= now()
    ORDER BY available_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE {queue_table} AS t
SET status = 'leased',
    lease_id = :lease,
    locked_until = now() + make_interval(secs => t.visibility_timeout_seconds),
    current_attempt = t.current_attempt + 1,
    updated_at = now()
FROM picked, (SELECT set_config('synchronous_commit', 'off', true)) AS fast
WHERE t.id = picked.id
RETURNING t.id, t.payload, t.current_attempt, t.visibility_timeout_seconds, t.available_at

-- name: next_due
SELECT EXTRACT(EPOCH FROM min(available_at) - now())::float8
FROM {queue_table}
WHERE queue_name = ANY(:queues::text[]) AND status = 'pending'

-- name: ack
DELETE FROM {queue_table} AS t
USING unnest(:id::bigint[], :lease::bigint[]) AS r(id, lease),
    (SELECT set_config('synchronous_commit', 'off', true)) AS fast
WHERE t.id = r.id AND t.lease_id = r.lease

-- name: complete
UPDATE {queue_table} AS t
SET status = 'completed', lease_id = NULL, locked_until = NULL,
    completed_at = now(), updated_at = now()
FROM unnest(:id::bigint[], :lease::bigint[]) AS r(id, lease),
    (SELECT set_config('synchronous_commit', 'off', true)) AS fast
WHERE t.id = r.id AND t.lease_id = r.lease

-- name: release
UPDATE {queue_table} AS t
SET status = 'pending', lease_id = NULL, locked_until = NULL,
    current_attempt = t.current_attempt - 1, updated_at = now()
FROM unnest(:id::bigint[], :lease::bigint[]) AS r(id, lease),
    (SELECT set_config('synchronous_commit', 'off', true)) AS fast
WHERE t.id = r.id AND t.lease_id = r.lease

-- name: extend
UPDATE {queue_table} AS t
SET locked_until = now() + make_interval(secs => t.visibility_timeout_seconds),
    updated_at = now()
FROM unnest(:id::bigint[], :lease::bigint[]) AS r(id, lease),
    (SELECT set_config('synchronous_commit', 'off', true)) AS fast
WHERE t.id = r.id AND t.lease_id = r.lease AND t.status = 'leased'

-- name: retry
UPDATE {queue_table}
SET queue_name = :queue, task_id = :task_id, payload = :payload, status = 'pending',
    lease_id = NULL, locked_until = NULL,
    available_at = now() + make_interval(secs => :delay::float8),
    visibility_timeout_seconds = :visibility_timeout, current_attempt = 0, updated_at = now()
WHERE id = :id AND lease_id = :lease

-- name: drop_lease
DELETE FROM {queue_table} WHERE id = :id AND lease_id = :lease

-- name: insert_dead
INSERT INTO {dead_letter_table} (queue_name, task_id, task_name, payload, error_type,
    error_message, attempts, visibility_timeout_seconds, failed_at)
VALUES (:queue, :task_id, :task_name, :payload, :error_type, :error_message, :attempts,
    :visibility_timeout, to_timestamp(:failed_at))

-- name: reclaim
WITH expired AS (
    SELECT id FROM {queue_table}
    WHERE status = 'leased' AND locked_until <= now() AND queue_name = ANY(:queues::text[])
    FOR UPDATE SKIP LOCKED
)
UPDATE {queue_table} AS t
SET status = 'pending', lease_id = NULL, locked_until = NULL, updated_at = now()
FROM expired, (SELECT set_config('synchronous_commit', 'off', true)) AS fast
WHERE t.id = expired.id
RETURNING t.id

-- name: sizes
SELECT
    count(*) FILTER (WHERE status = 'pending' AND available_at <= now()),
    count(*) FILTER (WHERE status = 'pending' AND available_at > now()),
    count(*) FILTER (WHERE status = 'leased'),
    (SELECT count(*) FROM {dead_letter_table} WHERE queue_name = :queue)
FROM {queue_table}
WHERE queue_name = :queue

-- name: dead_letters
SELECT id, queue_name, payload, task_id, task_name, error_type, error_message, attempts,
    EXTRACT(EPOCH FROM failed_at)::float8, visibility_timeout_seconds
FROM {dead_letter_table}
WHERE queue_name = :queue
ORDER BY id
LIMIT :limit

-- name: lock_dead_letters
SELECT id, queue_name, payload, task_id, task_name, error_type, error_message, attempts,
    EXTRACT(EPOCH FROM failed_at)::float8, visibility_timeout_seconds
FROM {dead_letter_table}
WHERE queue_name = :queue
ORDER BY id
FOR UPDATE

-- name: delete_dead
DELETE FROM {dead_letter_table} WHERE id = ANY(:id::bigint[])

-- name: purge_dead
DELETE FROM {dead_letter_table} WHERE queue_name = :queue

-- name: queue_names
SELECT queue_name FROM {queue_table} WHERE status <> 'completed'
UNION
SELECT queue_name FROM {dead_letter_table}
ORDER BY 1

-- name: record_heartbeat
INSERT INTO {workers_table} (worker_id, hostname, pid, queues, concurrency, driver,
    started_at, last_heartbeat, expires_at, active, processed, failed)
VALUES (:worker_id, :hostname, :pid, :queues, :concurrency, :driver,
    to_timestamp(:started_at::float8), now(), now() + make_interval(secs => :ttl::float8),
    :active, :processed, :failed)
ON CONFLICT (worker_id) DO UPDATE SET
    hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
    concurrency = EXCLUDED.concurrency, driver = EXCLUDED.driver,
    started_at = EXCLUDED.started_at, last_heartbeat = EXCLUDED.last_heartbeat,
    expires_at = EXCLUDED.expires_at, active = EXCLUDED.active,
    processed = EXCLUDED.processed, failed = EXCLUDED.failed

-- name: prune_workers
DELETE FROM {workers_table} WHERE expires_at <= now()

-- name: remove_worker
DELETE FROM {workers_table} WHERE worker_id = :worker_id

-- name: live_workers
SELECT worker_id, hostname, pid, queues, concurrency, driver,
    EXTRACT(EPOCH FROM started_at)::float8, EXTRACT(EPOCH FROM last_heartbeat)::float8,
    active, processed, failed
FROM {workers_table}
WHERE expires_at > now()

-- name: keep_completed
INSERT INTO {completed_table} (queue_name, task_id, task_name, attempt, worker_id,
    dispatched_at, started_at, completed_at, duration_ms)
SELECT r.queue, r.task_id, r.task_name, r.attempt, r.worker_id, to_timestamp(r.dispatched),
    to_timestamp(r.started), to_timestamp(r.completed), r.duration
FROM unnest(:queue::text[], :task_id::text[], :task_name::text[], :attempt::int[],
            :worker_id::text[], :dispatched_at::float8[], :started_at::float8[],
            :completed_at::float8[], :duration_ms::float8[])
    WITH ORDINALITY AS r(queue, task_id, task_name, attempt, worker_id, dispatched, started,
                         completed, duration, n)
ORDER BY r.n

-- name: prune_completed
-- Keeps the newest :keep records of the queue.
DELETE FROM {completed_table}
WHERE queue_name = :queue AND id <= (
    SELECT id FROM {completed_table}
    WHERE queue_name = :queue
    ORDER BY id DESC
    OFFSET :keep LIMIT 1
)

-- name: completed_tasks
SELECT queue_name, task_id, task_name, attempt, worker_id,
    EXTRACT(EPOCH FROM dispatched_at)::float8, EXTRACT(EPOCH FROM started_at)::float8,
    EXTRACT(EPOCH FROM completed_at)::float8, duration_ms
FROM {completed_table}
WHERE queue_name = :queue
ORDER BY id DESC
LIMIT :limit

-- name: completed_count
SELECT count(*) FROM {completed_table} WHERE queue_name = :queue
