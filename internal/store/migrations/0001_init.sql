-- secretbot schema version 1. SQLite dialect for the DDL only (INTEGER
-- PRIMARY KEY is SQLite's rowid alias; PostgreSQL would use BIGINT
-- GENERATED ... AS IDENTITY); the queries in the Go code are portable.
-- All times are INTEGER unix nanoseconds, UTC; 0 means "not set".

-- inbox: every Socket Mode envelope, stored before it is acked.
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    dedup_key   TEXT    NOT NULL UNIQUE,   -- envelope_id, or "event:"+event_id
    envelope_id TEXT    NOT NULL,
    type        TEXT    NOT NULL,          -- slash_commands | interactive | events_api
    payload     BLOB    NOT NULL,          -- JSON, without Slack's verification token
    received_at INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'working', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX inbox_state ON inbox (state, lease_until);

-- outbox: every message the bot owes someone. Never holds a credential.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    dedup_key    TEXT    UNIQUE,           -- NULL when the caller gave none
    body         BLOB    NOT NULL,         -- internal/outbox.Message JSON
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (state, next_attempt);

-- audit_events: the hash-chained access log (internal/audit). Append only;
-- `secretbot audit verify` detects any change to these rows.
--   seq        1, 2, 3, ... without gaps; the primary key, so of two
--              concurrent appenders one loses
--   time_ns    event time, unix nanoseconds UTC
--   actor      Slack user id, or "secretbot"
--   action     e.g. "whoami", "command.refused", "checkpoint"
--   scope      scope name, '' when none
--   secret     secret name, '' when none
--   outcome    ok | refused | failed
--   reason     free text, never a credential
--   links      JSON object of string values, keys sorted (ticket, incident,
--              slack_message, accessor, grant); '{}' when none
--   prev_hash  hash of event seq-1, '' for event 1
--   hash       lowercase hex HMAC-SHA256 (SECRETBOT_AUDIT_KEY) over all the
--              columns above (see audit.canonical)
CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    time_ns   INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    scope     TEXT    NOT NULL DEFAULT '',
    secret    TEXT    NOT NULL DEFAULT '',
    outcome   TEXT    NOT NULL,
    reason    TEXT    NOT NULL DEFAULT '',
    links     TEXT    NOT NULL DEFAULT '{}',
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);

-- meta: small key/value rows (schedule cursors, locks), compare-and-set.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
