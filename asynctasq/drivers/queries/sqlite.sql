-- SQLite >= 3.35 (stdlib sqlite3), WAL mode. Every write runs inside BEGIN IMMEDIATE, so
-- one process at a time claims (the write lock is the claim's lock; no SKIP LOCKED
-- needed). Times are epoch seconds (REAL) from the one machine's clock, passed as :now.
-- Same statuses and rules as postgres.sql. List parameters arrive as JSON arrays
-- (json_each); execute_many runs a statement once per row in one transaction.

-- name: lock_schema
SELECT 1

-- name: unlock_schema
SELECT 1

-- name: schema_objects
SELECT type || ' ' || name
FROM sqlite_master
WHERE (type = 'table' AND name IN ({queue_table_name}, {dead_letter_table_name},
        {workers_table_name}, {completed_table_name}))
   OR (type = 'index' AND name IN ({ready_index_name}, {leased_index_name}, {dead_index_name},
        {completed_index_name}))

-- name: migrate_1_queue_table
CREATE TABLE IF NOT EXISTS {queue_table} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_name TEXT NOT NULL,
    task_id TEXT NOT NULL DEFAULT '',
    payload BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'leased', 'completed')),
    available_at REAL NOT NULL,
    locked_until REAL,
    lease_id INTEGER,
    current_attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,
    visibility_timeout_seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    completed_at REAL
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
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_name TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_name TEXT NOT NULL,
    payload BLOB NOT NULL,
    error_type TEXT NOT NULL,
    error_message TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    visibility_timeout_seconds REAL NOT NULL,
    failed_at REAL NOT NULL,
    created_at REAL NOT NULL
)

-- name: migrate_5_dead_index
CREATE INDEX IF NOT EXISTS {dead_index} ON {dead_letter_table} (queue_name, id)

-- name: migrate_6_workers_table
-- The worker registry: one row per worker, replaced by each heartbeat; a row whose
-- expires_at passed is a worker that died without stopping (not listed, pruned later).
CREATE TABLE IF NOT EXISTS {workers_table} (
    worker_id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    driver TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_heartbeat REAL NOT NULL,
    expires_at REAL NOT NULL,
    active INTEGER NOT NULL,
    processed INTEGER NOT NULL,
    failed INTEGER NOT NULL
)

-- name: migrate_7_completed_table
-- Completed-task records (repository.keep_completed_tasks), newest = highest id.
CREATE TABLE IF NOT EXISTS {completed_table} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_name TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    dispatched_at REAL NOT NULL,
    started_at REAL NOT NULL,
    completed_at REAL NOT NULL,
    duration_ms REAL NOT NULL
)

-- name: migrate_8_completed_index
CREATE INDEX IF NOT EXISTS {completed_index} ON {completed_table} (queue_name, id)

-- name: check_queue_table
SELECT id, queue_name, task_id, payload, status, available_at, locked_until, lease_id,
    current_attempt, max_attempts, visibility_timeout_seconds, created_at, updated_at,
    completed_at
FROM {queue_table} WHERE 0

-- name: check_dead_letter_table
SELECT id, queue_name, task_id, task_name, payload, error_type, error_message, attempts,
    visibility_timeout_seconds, failed_at, created_at
FROM {dead_letter_table} WHERE 0

-- name: check_workers_table
SELECT worker_id, hostname, pid, queues, concurrency, driver, started_at, last_heartbeat,
    expires_at, active, processed, failed
FROM {workers_table} WHERE 0

-- name: check_completed_table
SELECT id, queue_name, task_id, task_name, attempt, worker_id, dispatched_at, started_at,
    completed_at, duration_ms
FROM {completed_table} WHERE 0

-- name: enqueue
INSERT INTO {queue_table} (queue_name, task_id, payload, status, available_at,
    visibility_timeout_seconds, created_at, updated_at)
VALUES (:queue, :task_id, :payload, 'pending', :now + :delay, :visibility_timeout, :now, :now)

-- name: claim
UPDATE {queue_table}
SET status = 'leased', lease_id = :lease, locked_until = :now + visibility_timeout_seconds,
    current_attempt = current_attempt + 1, updated_at = :now
WHERE id IN (
    SELECT id FROM {queue_table}
    WHERE queue_name = :queue AND status = 'pending' AND available_at <= :now
    ORDER BY available_at, id
    LIMIT :limit
)
RETURNING id, payload, current_attempt, visibility_timeout_seconds, available_at

-- name: next_due
SELECT MIN(available_at) - :now
FROM {queue_table}
WHERE queue_name IN (SELECT value FROM json_each(:queues)) AND status = 'pending'

-- name: ack
DELETE FROM {queue_table} WHERE id = :id AND lease_id = :lease

-- name: complete
UPDATE {queue_table}
SET status = 'completed', lease_id = NULL, locked_until = NULL, completed_at = :now,
    updated_at = :now
WHERE id = :id AND lease_id = :lease

-- name: release
UPDATE {queue_table}
SET status = 'pending', lease_id = NULL, locked_until = NULL,
    current_attempt = current_attempt - 1, updated_at = :now
WHERE id = :id AND lease_id = :lease

-- name: extend
UPDATE {queue_table}
SET locked_until = :now + visibility_timeout_seconds, updated_at = :now
WHERE id = :id AND lease_id = :lease AND status = 'leased'

-- name: retry
UPDATE {queue_table}
SET queue_name = :queue, task_id = :task_id, payload = :payload, status = 'pending',
    lease_id = NULL, locked_until = NULL, available_at = :now + :delay,
    visibility_timeout_seconds = :visibility_timeout, current_attempt = 0, updated_at = :now
WHERE id = :id AND lease_id = :lease

-- name: drop_lease
DELETE FROM {queue_table} WHERE id = :id AND lease_id = :lease

-- name: insert_dead
INSERT INTO {dead_letter_table} (queue_name, task_id, task_name, payload, error_type,
    error_message, attempts, visibility_timeout_seconds, failed_at, created_at)
VALUES (:queue, :task_id, :task_name, :payload, :error_type, :error_message, :attempts,
    :visibility_timeout, :failed_at, :now)

-- name: reclaim
UPDATE {queue_table}
SET status = 'pending', lease_id = NULL, locked_until = NULL, updated_at = :now
WHERE status = 'leased' AND locked_until <= :now
    AND queue_name IN (SELECT value FROM json_each(:queues))
RETURNING id

-- name: sizes
SELECT
    COALESCE(SUM(status = 'pending' AND available_at <= :now), 0),
    COALESCE(SUM(status = 'pending' AND available_at > :now), 0),
    COALESCE(SUM(status = 'leased'), 0),
    (SELECT COUNT(*) FROM {dead_letter_table} WHERE queue_name = :queue)
FROM {queue_table}
WHERE queue_name = :queue

-- name: dead_letters
SELECT id, queue_name, payload, task_id, task_name, error_type, error_message, attempts,
    failed_at, visibility_timeout_seconds
FROM {dead_letter_table}
WHERE queue_name = :queue
ORDER BY id
LIMIT :limit

-- name: lock_dead_letters
SELECT id, queue_name, payload, task_id, task_name, error_type, error_message, attempts,
    failed_at, visibility_timeout_seconds
FROM {dead_letter_table}
WHERE queue_name = :queue
ORDER BY id

-- name: delete_dead
DELETE FROM {dead_letter_table} WHERE id = :id

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
VALUES (:worker_id, :hostname, :pid, :queues, :concurrency, :driver, :started_at, :now,
    :now + :ttl, :active, :processed, :failed)
ON CONFLICT (worker_id) DO UPDATE SET
    hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, driver = excluded.driver,
    started_at = excluded.started_at, last_heartbeat = excluded.last_heartbeat,
    expires_at = excluded.expires_at, active = excluded.active,
    processed = excluded.processed, failed = excluded.failed

-- name: prune_workers
DELETE FROM {workers_table} WHERE expires_at <= :now

-- name: remove_worker
DELETE FROM {workers_table} WHERE worker_id = :worker_id

-- name: live_workers
SELECT worker_id, hostname, pid, queues, concurrency, driver, started_at, last_heartbeat,
    active, processed, failed
FROM {workers_table}
WHERE expires_at > :now

-- name: keep_completed
INSERT INTO {completed_table} (queue_name, task_id, task_name, attempt, worker_id,
    dispatched_at, started_at, completed_at, duration_ms)
VALUES (:queue, :task_id, :task_name, :attempt, :worker_id, :dispatched_at, :started_at,
    :completed_at, :duration_ms)

-- name: prune_completed
-- Keeps the newest :keep records of the queue.
DELETE FROM {completed_table}
WHERE queue_name = :queue AND id <= (
    SELECT id FROM {completed_table}
    WHERE queue_name = :queue
    ORDER BY id DESC
    LIMIT 1 OFFSET :keep
)

-- name: completed_tasks
SELECT queue_name, task_id, task_name, attempt, worker_id, dispatched_at, started_at,
    completed_at, duration_ms
FROM {completed_table}
WHERE queue_name = :queue
ORDER BY id DESC
LIMIT :limit

-- name: completed_count
SELECT COUNT(*) FROM {completed_table} WHERE queue_name = :queue
