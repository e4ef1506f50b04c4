-- Sessions API: applications and their API keys, workflows, verification sessions with their
-- reviews and kept images, and the webhook outbox with every delivery attempt.
CREATE TABLE api_applications (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,
    name             text        NOT NULL,
    webhook_url      text        NOT NULL,
    webhook_secret   text        NOT NULL,
    keep_images      boolean     NOT NULL,
    result_retention bigint      NOT NULL,
    created_at       timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    app_id     text COLLATE "C" NOT NULL REFERENCES api_applications (id),
    name       text        NOT NULL,
    hash       text COLLATE "C" NOT NULL UNIQUE,
    hint       text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE workflows (
    id                 text COLLATE "C" NOT NULL PRIMARY KEY,
    name               text    NOT NULL,
    type               text    NOT NULL,
    features           text[]  NOT NULL,
    liveness_method    text    NOT NULL,
    face_match_approve integer NOT NULL,
    face_match_decline integer NOT NULL,
    liveness_approve   integer NOT NULL,
    liveness_decline   integer NOT NULL,
    max_attempts       integer NOT NULL,
    created_at         timestamptz NOT NULL
);

-- An identity never hands out a number twice, even after deletions.
CREATE TABLE verification_sessions (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,
    number           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    app_id           text COLLATE "C" NOT NULL REFERENCES api_applications (id),
    workflow_id      text COLLATE "C" NOT NULL REFERENCES workflows (id),
    vendor_data      text COLLATE "C" NOT NULL,
    callback         text        NOT NULL,
    metadata         bytea,
    status           text COLLATE "C" NOT NULL,
    token_hash       text COLLATE "C" NOT NULL UNIQUE,
    reference        bytea,
    reference_source text        NOT NULL,
    attempts         integer     NOT NULL,
    ip_address       text        NOT NULL,
    results          bytea,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    finished_at      timestamptz
);
-- One open session per application, workflow and vendor data.
CREATE UNIQUE INDEX verification_sessions_open ON verification_sessions (app_id, workflow_id, vendor_data)
    WHERE status IN ('Not Started', 'In Progress') AND vendor_data <> '';
CREATE INDEX verification_sessions_app_vendor ON verification_sessions (app_id, vendor_data);
CREATE INDEX verification_sessions_status_expires ON verification_sessions (status, expires_at);
CREATE INDEX verification_sessions_app_finished ON verification_sessions (app_id, finished_at);

CREATE TABLE verification_reviews (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id text COLLATE "C" NOT NULL REFERENCES verification_sessions (id) ON DELETE CASCADE,
    author     text        NOT NULL,
    new_status text        NOT NULL,
    comment    text        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX verification_reviews_session ON verification_reviews (session_id);

CREATE TABLE verification_images (
    session_id text COLLATE "C" NOT NULL REFERENCES verification_sessions (id) ON DELETE CASCADE,
    n          integer     NOT NULL,
    kind       text        NOT NULL,
    sealed     bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, n)
);

CREATE TABLE webhook_deliveries (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    app_id          text COLLATE "C" NOT NULL REFERENCES api_applications (id),
    session_id      text COLLATE "C" NOT NULL REFERENCES verification_sessions (id) ON DELETE CASCADE,
    status          text        NOT NULL,
    payload         bytea       NOT NULL,
    state           text COLLATE "C" NOT NULL,
    attempts        integer     NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    give_up_at      timestamptz NOT NULL,
    lease_until     timestamptz,
    lease_token     text        NOT NULL,
    last_error      text        NOT NULL,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_session ON webhook_deliveries (session_id, state, seq);

CREATE TABLE webhook_attempts (
    delivery_id text COLLATE "C" NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n           integer     NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer     NOT NULL,
    error       text        NOT NULL,
    duration    bigint      NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
