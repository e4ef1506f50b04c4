-- Sessions API: applications and their API keys, workflows, verification sessions with their
-- reviews and kept images, and the webhook outbox with every delivery attempt.
CREATE TABLE api_applications (
    id               TEXT    NOT NULL PRIMARY KEY,
    name             TEXT    NOT NULL,
    webhook_url      TEXT    NOT NULL,
    webhook_secret   TEXT    NOT NULL,
    keep_images      INTEGER NOT NULL,
    result_retention INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    app_id     TEXT    NOT NULL REFERENCES api_applications (id),
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    hint       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE TABLE workflows (
    id                 TEXT    NOT NULL PRIMARY KEY,
    name               TEXT    NOT NULL,
    type               TEXT    NOT NULL,
    features           TEXT    NOT NULL,
    liveness_method    TEXT    NOT NULL,
    face_match_approve INTEGER NOT NULL,
    face_match_decline INTEGER NOT NULL,
    liveness_approve   INTEGER NOT NULL,
    liveness_decline   INTEGER NOT NULL,
    max_attempts       INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
) STRICT;

-- number is the rowid: AUTOINCREMENT never hands out a number twice, even after deletions.
CREATE TABLE verification_sessions (
    number           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    app_id           TEXT    NOT NULL REFERENCES api_applications (id),
    workflow_id      TEXT    NOT NULL REFERENCES workflows (id),
    vendor_data      TEXT    NOT NULL,
    callback         TEXT    NOT NULL,
    metadata         BLOB,
    status           TEXT    NOT NULL,
    token_hash       TEXT    NOT NULL UNIQUE,
    reference        BLOB,
    reference_source TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    ip_address       TEXT    NOT NULL,
    results          BLOB,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    finished_at      INTEGER
) STRICT;
-- One open session per application, workflow and vendor data.
CREATE UNIQUE INDEX verification_sessions_open ON verification_sessions (app_id, workflow_id, vendor_data)
    WHERE status IN ('Not Started', 'In Progress') AND vendor_data <> '';
CREATE INDEX verification_sessions_app_vendor ON verification_sessions (app_id, vendor_data);
CREATE INDEX verification_sessions_status_expires ON verification_sessions (status, expires_at);
CREATE INDEX verification_sessions_app_finished ON verification_sessions (app_id, finished_at);

CREATE TABLE verification_reviews (
    id         INTEGER NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES verification_sessions (id) ON DELETE CASCADE,
    author     TEXT    NOT NULL,
    new_status TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX verification_reviews_session ON verification_reviews (session_id);

CREATE TABLE verification_images (
    session_id TEXT    NOT NULL REFERENCES verification_sessions (id) ON DELETE CASCADE,
    n          INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, n)
) STRICT;

CREATE TABLE webhook_deliveries (
    seq             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    app_id          TEXT    NOT NULL REFERENCES api_applications (id),
    session_id      TEXT    NOT NULL REFERENCES verification_sessions (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    give_up_at      INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_token     TEXT    NOT NULL,
    last_error      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_session ON webhook_deliveries (session_id, state, seq);

CREATE TABLE webhook_attempts (
    delivery_id TEXT    NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    duration    INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, n)
) STRICT;
