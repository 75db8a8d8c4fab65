-- MySQL >= 8.0.1 / MariaDB >= 10.6 (aiomysql), InnoDB, READ COMMITTED sessions in UTC.
-- Times are the server's: NOW(6) plus microseconds. Same statuses and rules as
-- postgres.sql. MySQL has no UPDATE ... RETURNING: a claim is <name>_select (locking with
-- FOR UPDATE SKIP LOCKED, in one consistent order) then <name>_update of the picked ids,
-- in one short transaction. [[ ... ]] is repeated once per row by execute_many. Batches
-- name their rows twice, "id IN (...) AND (id, lease_id) IN (...)", so the optimizer
-- always takes the primary-key range and never scans (and waits on) other rows.

-- name: lock_schema
SELECT GET_LOCK(CONCAT('asynctasq:', {queue_table_name}), 60)

-- name: unlock_schema
SELECT RELEASE_LOCK(CONCAT('asynctasq:', {queue_table_name}))

-- name: schema_objects
-- One label per table that exists, as asynctasq migrate shows it ('table jobs.q'); each
-- table is looked up in its own database (the connection's when the name has none).
SELECT CONCAT('table ', o.label)
FROM information_schema.tables AS t
JOIN (
    SELECT {queue_table_schema} AS db, {queue_table_name} AS name, {queue_table_label} AS label
    UNION ALL
    SELECT {dead_letter_table_schema}, {dead_letter_table_name}, {dead_letter_table_label}
    UNION ALL
    SELECT {workers_table_schema}, {workers_table_name}, {workers_table_label}
    UNION ALL
    SELECT {completed_table_schema}, {completed_table_name}, {completed_table_label}
) AS o ON t.table_schema = o.db AND t.table_name = o.name

-- name: migrate_1_queue_table
CREATE TABLE IF NOT EXISTS {queue_table} (
    id BIGINT NOT NULL AUTO_INCREMENT,
    queue_name VARCHAR(255) NOT NULL,
    task_id VARCHAR(255) NOT NULL DEFAULT '',
    payload LONGBLOB NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    available_at DATETIME(6) NOT NULL,
    locked_until DATETIME(6) NULL,
    lease_id BIGINT NULL,
    current_attempt INT NOT NULL DEFAULT 0,
    max_attempts INT NULL,
    visibility_timeout_seconds DOUBLE NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    completed_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    -- serves the claim: ready rows of one queue in (available_at, id) order
    KEY ready (queue_name, status, available_at, id),
    -- serves the reclaim of expired leases
    KEY leased (status, locked_until),
    CHECK (status IN ('pending', 'leased', 'completed'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin

-- name: migrate_2_dead_letter_table
CREATE TABLE IF NOT EXISTS {dead_letter_table} (
    id BIGINT NOT NULL AUTO_INCREMENT,
    queue_name VARCHAR(255) NOT NULL,
    task_id VARCHAR(255) NOT NULL,
    task_name VARCHAR(1024) NOT NULL,
    payload LONGBLOB NOT NULL,
    error_type VARCHAR(255) NOT NULL,
    error_message TEXT NOT NULL,
    attempts INT NOT NULL,
    visibility_timeout_seconds DOUBLE NOT NULL,
    failed_at DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY queue (queue_name, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin

-- name: migrate_3_workers_table
-- The worker registry: one row per worker, replaced by each heartbeat; a row whose
-- expires_at passed is a worker that died without stopping (not listed, pruned later).
CREATE TABLE IF NOT EXISTS {workers_table} (
    worker_id VARCHAR(255) NOT NULL,
    hostname VARCHAR(255) NOT NULL,
    pid INT NOT NULL,
    queues TEXT NOT NULL,
    concurrency INT NOT NULL,
    driver VARCHAR(64) NOT NULL,
    started_at DATETIME(6) NOT NULL,
    last_heartbeat DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    active INT NOT NULL,
    processed BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    PRIMARY KEY (worker_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin

-- name: migrate_4_completed_table
-- Completed-task records (repository.keep_completed_tasks), newest = highest id.
CREATE TABLE IF NOT EXISTS {completed_table} (
    id BIGINT NOT NULL AUTO_INCREMENT,
    queue_name VARCHAR(255) NOT NULL,
    task_id VARCHAR(255) NOT NULL,
    task_name VARCHAR(1024) NOT NULL,
    attempt INT NOT NULL,
    worker_id VARCHAR(255) NOT NULL,
    dispatched_at DATETIME(6) NOT NULL,
    started_at DATETIME(6) NOT NULL,
    completed_at DATETIME(6) NOT NULL,
    duration_ms DOUBLE NOT NULL,
    PRIMARY KEY (id),
    KEY queue (queue_name, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin

-- name: check_queue_table
SELECT id, queue_name, task_id, payload, status, available_at, locked_until, lease_id,
    current_attempt, max_attempts, visibility_timeout_seconds, created_at, updated_at,
    completed_at
FROM {queue_table} WHERE 1 = 0

-- name: check_dead_letter_table
SELECT id, queue_name, task_id, task_name, payload, error_type, error_message, attempts,
    visibility_timeout_seconds, failed_at, created_at
FROM {dead_letter_table} WHERE 1 = 0

-- name: check_workers_table
SELECT worker_id, hostname, pid, queues, concurrency, driver, started_at, last_heartbeat,
    expires_at, active, processed, failed
FROM {workers_table} WHERE 1 = 0

-- name: check_completed_table
SELECT id, queue_name, task_id, task_name, attempt, worker_id, dispatched_at, started_at,
    completed_at, duration_ms
FROM {completed_table} WHERE 1 = 0

-- name: enqueue
INSERT INTO {queue_table} (queue_name, task_id, payload, status, available_at,
    visibility_timeout_seconds, created_at, updated_at)
VALUES [[(:queue, :task_id, :payload, 'pending',
    TIMESTAMPADD(MICROSECOND, ROUND(:delay * 1000000), NOW(6)), :visibility_timeout,
    NOW(6), NOW(6))]]

-- name: claim_select
SELECT id, payload, current_attempt + 1, visibility_timeout_seconds, available_at
FROM {queue_table}
WHERE queue_name = :queue AND status = 'pending' AND available_at <= NOW(6)
ORDER BY available_at, id
LIMIT :limit
FOR UPDATE SKIP LOCKED

-- name: claim_update
UPDATE {queue_table}
SET status = 'leased', lease_id = :lease,
    locked_until = TIMESTAMPADD(MICROSECOND, ROUND(visibility_timeout_seconds * 1000000), NOW(6)),
    current_attempt = current_attempt + 1, updated_at = NOW(6)
WHERE id IN :ids

-- name: next_due
SELECT TIMESTAMPDIFF(MICROSECOND, NOW(6), MIN(available_at)) / 1000000
FROM {queue_table}
WHERE queue_name IN :queues AND status = 'pending'

-- name: ack
DELETE FROM {queue_table} WHERE id IN ([[:id]]) AND (id, lease_id) IN ([[(:id, :lease)]])

-- name: complete
UPDATE {queue_table}
SET status = 'completed', lease_id = NULL, locked_until = NULL,
    completed_at = NOW(6), updated_at = NOW(6)
WHERE id IN ([[:id]]) AND (id, lease_id) IN ([[(:id, :lease)]])

-- name: release
UPDATE {queue_table}
SET status = 'pending', lease_id = NULL, locked_until = NULL,
    current_attempt = current_attempt - 1, updated_at = NOW(6)
WHERE id IN ([[:id]]) AND (id, lease_id) IN ([[(:id, :lease)]])

-- name: extend
UPDATE {queue_table}
SET locked_until = TIMESTAMPADD(MICROSECOND, ROUND(visibility_timeout_seconds * 1000000), NOW(6)),
    updated_at = NOW(6)
WHERE id IN ([[:id]]) AND (id, lease_id) IN ([[(:id, :lease)]]) AND status = 'leased'

-- name: retry
UPDATE {queue_table}
SET queue_name = :queue, task_id = :task_id, payload = :payload, status = 'pending',
    lease_id = NULL, locked_until = NULL,
    available_at = TIMESTAMPADD(MICROSECOND, ROUND(:delay * 1000000), NOW(6)),
    visibility_timeout_seconds = :visibility_timeout, current_attempt = 0, updated_at = NOW(6)
WHERE id = :id AND lease_id = :lease

-- name: drop_lease
DELETE FROM {queue_table} WHERE id = :id AND lease_id = :lease

-- name: insert_dead
INSERT INTO {dead_letter_table} (queue_name, task_id, task_name, payload, error_type,
    error_message, attempts, visibility_timeout_seconds, failed_at)
VALUES (:queue, :task_id, :task_name, :payload, :error_type, :error_message, :attempts,
    :visibility_timeout, FROM_UNIXTIME(:failed_at))

-- name: reclaim_select
SELECT id
FROM {queue_table}
WHERE status = 'leased' AND locked_until <= NOW(6) AND queue_name IN :queues
ORDER BY id
FOR UPDATE SKIP LOCKED

-- name: reclaim_update
UPDATE {queue_table}
SET status = 'pending', lease_id = NULL, locked_until = NULL, updated_at = NOW(6)
WHERE id IN :ids

-- name: sizes
SELECT
    COALESCE(SUM(status = 'pending' AND available_at <= NOW(6)), 0),
    COALESCE(SUM(status = 'pending' AND available_at > NOW(6)), 0),
    COALESCE(SUM(status = 'leased'), 0),
    (SELECT COUNT(*) FROM {dead_letter_table} WHERE queue_name = :queue)
FROM {queue_table}
WHERE queue_name = :queue

-- name: dead_letters
SELECT id, queue_name, payload, task_id, task_name, error_type, error_message, attempts,
    UNIX_TIMESTAMP(failed_at), visibility_timeout_seconds
FROM {dead_letter_table}
WHERE queue_name = :queue
ORDER BY id
LIMIT :limit

-- name: lock_dead_letters
SELECT id, queue_name, payload, task_id, task_name, error_type, error_message, attempts,
    UNIX_TIMESTAMP(failed_at), visibility_timeout_seconds
FROM {dead_letter_table}
WHERE queue_name = :queue
ORDER BY id
FOR UPDATE

-- name: delete_dead
DELETE FROM {dead_letter_table} WHERE id IN ([[:id]])

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
    FROM_UNIXTIME(:started_at), NOW(6),
    TIMESTAMPADD(MICROSECOND, ROUND(:ttl * 1000000), NOW(6)), :active, :processed, :failed)
ON DUPLICATE KEY UPDATE
    hostname = VALUES(hostname), pid = VALUES(pid), queues = VALUES(queues),
    concurrency = VALUES(concurrency), driver = VALUES(driver),
    started_at = VALUES(started_at), last_heartbeat = VALUES(last_heartbeat),
    expires_at = VALUES(expires_at), active = VALUES(active),
    processed = VALUES(processed), failed = VALUES(failed)

-- name: prune_workers
DELETE FROM {workers_table} WHERE expires_at <= NOW(6)

-- name: remove_worker
DELETE FROM {workers_table} WHERE worker_id = :worker_id

-- name: live_workers
SELECT worker_id, hostname, pid, queues, concurrency, driver, UNIX_TIMESTAMP(started_at),
    UNIX_TIMESTAMP(last_heartbeat), active, processed, failed
FROM {workers_table}
WHERE expires_at > NOW(6)

-- name: keep_completed
INSERT INTO {completed_table} (queue_name, task_id, task_name, attempt, worker_id,
    dispatched_at, started_at, completed_at, duration_ms)
VALUES [[(:queue, :task_id, :task_name, :attempt, :worker_id, FROM_UNIXTIME(:dispatched_at),
    FROM_UNIXTIME(:started_at), FROM_UNIXTIME(:completed_at), :duration_ms)]]

-- name: prune_completed
-- Keeps the newest :keep records of the queue (the derived table lets MySQL read the table
-- it deletes from).
DELETE FROM {completed_table}
WHERE queue_name = :queue AND id <= (
    SELECT id FROM (
        SELECT id FROM {completed_table}
        WHERE queue_name = :queue
        ORDER BY id DESC
        LIMIT 1 OFFSET :keep
    ) AS newest
)

-- name: completed_tasks
SELECT queue_name, task_id, task_name, attempt, worker_id, UNIX_TIMESTAMP(dispatched_at),
    UNIX_TIMESTAMP(started_at), UNIX_TIMESTAMP(completed_at), duration_ms
FROM {completed_table}
WHERE queue_name = :queue
ORDER BY id DESC
LIMIT :limit

-- name: completed_count
SELECT COUNT(*) FROM {completed_table} WHERE queue_name = :queue
