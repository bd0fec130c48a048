-- secretbot schema version 3: the inventory registry (internal/rotation.Secret),
-- rotations (internal/rotation.Rotation) and the journal
-- (internal/rotation.JournalEntry). Never a secret value: only names, paths,
-- versions and who did what. Times are INTEGER unix nanoseconds, UTC; 0 means
-- "not set". Durations are INTEGER nanoseconds. Every change is a
-- compare-and-set on version.
CREATE TABLE secrets (
    name             TEXT    PRIMARY KEY,
    environment      TEXT    NOT NULL DEFAULT '',
    owner_team       TEXT    NOT NULL DEFAULT '',
    owner_contact    TEXT    NOT NULL DEFAULT '',
    mount            TEXT    NOT NULL,
    path             TEXT    NOT NULL,
    interval_ns      INTEGER NOT NULL,
    generate_length  INTEGER NOT NULL DEFAULT 0,
    generate_alphabet TEXT   NOT NULL DEFAULT '',
    provided         INTEGER NOT NULL DEFAULT 0, -- 0 or 1
    last_rotated_at  INTEGER NOT NULL DEFAULT 0,
    last_operator    TEXT    NOT NULL DEFAULT '',
    last_ticket      TEXT    NOT NULL DEFAULT '',
    last_version     INTEGER NOT NULL DEFAULT 0,
    source           TEXT    NOT NULL CHECK (source IN ('config', 'registered')),
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX secrets_path ON secrets (mount, path);

CREATE TABLE rotations (
    id                TEXT    PRIMARY KEY,    -- "R" + 8 base32 characters
    secret            TEXT    NOT NULL,
    operator          TEXT    NOT NULL,
    ticket            TEXT    NOT NULL DEFAULT '',
    incident          TEXT    NOT NULL DEFAULT '',
    commander         TEXT    NOT NULL DEFAULT '',
    emergency         INTEGER NOT NULL DEFAULT 0, -- 0 or 1
    state             TEXT    NOT NULL CHECK (state IN ('staging', 'production', 'completed', 'rolled-back', 'failed')),
    from_version      INTEGER NOT NULL DEFAULT 0,
    to_version        INTEGER NOT NULL DEFAULT 0,
    thread_channel    TEXT    NOT NULL DEFAULT '',
    thread_ts         TEXT    NOT NULL DEFAULT '',
    staging_by        TEXT    NOT NULL DEFAULT '',
    staging_at        INTEGER NOT NULL DEFAULT 0,
    production_by     TEXT    NOT NULL DEFAULT '',
    production_at     INTEGER NOT NULL DEFAULT 0,
    rolled_back_by    TEXT    NOT NULL DEFAULT '',
    rollback_version  INTEGER NOT NULL DEFAULT 0,
    flagged           INTEGER NOT NULL DEFAULT 0, -- 0 or 1
    reminders         INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT    NOT NULL DEFAULT '',
    started_at        INTEGER NOT NULL,
    completed_at      INTEGER NOT NULL DEFAULT 0,
    version           INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX rotations_state ON rotations (state, started_at);
CREATE INDEX rotations_secret ON rotations (secret, started_at);

CREATE TABLE journal (
    id        TEXT    PRIMARY KEY,            -- "J" + 8 base32 characters
    kind      TEXT    NOT NULL CHECK (kind IN ('restore-test', 'review', 'post-incident')),
    outcome   TEXT    NOT NULL DEFAULT '',
    notes     TEXT    NOT NULL DEFAULT '',
    author    TEXT    NOT NULL,
    rotation  TEXT    NOT NULL DEFAULT '',
    at        INTEGER NOT NULL,
    fields    TEXT    NOT NULL DEFAULT '{}'   -- JSON object of strings
);
CREATE INDEX journal_kind ON journal (kind, at);
