-- secretbot schema version 2: access grants (internal/access.Grant), one
-- column per field. Never a token or a wrapping token: only accessors.
-- Times are INTEGER unix nanoseconds, UTC; 0 means "not set". Durations are
-- INTEGER nanoseconds. Every change is a compare-and-set on version.
CREATE TABLE grants (
    id             TEXT    PRIMARY KEY,       -- "G" + 8 base32 characters
    requester      TEXT    NOT NULL,          -- Slack user id
    requester_name TEXT    NOT NULL DEFAULT '',
    email          TEXT    NOT NULL DEFAULT '',
    scope          TEXT    NOT NULL,
    ttl_ns         INTEGER NOT NULL,
    ticket         TEXT    NOT NULL DEFAULT '',
    incident       TEXT    NOT NULL DEFAULT '',
    reason         TEXT    NOT NULL DEFAULT '',
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'issued', 'expired', 'revoked', 'denied', 'failed')),
    version        INTEGER NOT NULL,
    evidence       TEXT    NOT NULL DEFAULT '[]', -- JSON array of {kind, status, detail, link}
    approver       TEXT    NOT NULL DEFAULT '',
    deny_reason    TEXT    NOT NULL DEFAULT '',
    decided_at     INTEGER NOT NULL DEFAULT 0,
    delivery       TEXT    NOT NULL DEFAULT '',
    token_accessor TEXT    NOT NULL DEFAULT '',
    wrap_accessor  TEXT    NOT NULL DEFAULT '',
    vault_group    TEXT    NOT NULL DEFAULT '',
    wrap_expires   INTEGER NOT NULL DEFAULT 0,
    wrap_status    TEXT    NOT NULL DEFAULT '',
    issued_at      INTEGER NOT NULL DEFAULT 0,
    expires_at     INTEGER NOT NULL DEFAULT 0,
    delivered_at   INTEGER NOT NULL DEFAULT 0,
    ended_at       INTEGER NOT NULL DEFAULT 0,
    end_reason     TEXT    NOT NULL DEFAULT '',
    revoke_pending INTEGER NOT NULL DEFAULT 0, -- 0 or 1
    last_error     TEXT    NOT NULL DEFAULT '',
    response_url   TEXT    NOT NULL DEFAULT '',
    card_channel   TEXT    NOT NULL DEFAULT '',
    card_ts        TEXT    NOT NULL DEFAULT '',
    not_after      INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX grants_state ON grants (state, expires_at);
CREATE INDEX grants_requester ON grants (requester, state);
