-- Visage schema, SQLite. Times are INTEGER microseconds since the Unix epoch (UTC); durations
-- are INTEGER nanoseconds; string lists are JSON arrays in TEXT; booleans are 0/1.

CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    display_name   TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    email_verified INTEGER NOT NULL,
    admin          INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE templates (
    user_id       TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    key_id        TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    sealed        BLOB    NOT NULL CHECK (length(sealed) > 0),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE clients (
    id                        TEXT    NOT NULL PRIMARY KEY,
    secret_hash               TEXT    NOT NULL,
    name                      TEXT    NOT NULL,
    redirect_uris             TEXT    NOT NULL,
    post_logout_redirect_uris TEXT    NOT NULL,
    public                    INTEGER NOT NULL,
    auth_method               TEXT    NOT NULL,
    jwks                      BLOB,
    first_party               INTEGER NOT NULL,
    id_token_signing_alg      TEXT    NOT NULL,
    claims_in_id_token        INTEGER NOT NULL,
    access_token_ttl          INTEGER NOT NULL,
    refresh_token_ttl         INTEGER NOT NULL,
    created_at                INTEGER NOT NULL
) STRICT;

CREATE TABLE auth_requests (
    id                    TEXT    NOT NULL PRIMARY KEY,
    client_id             TEXT    NOT NULL,
    redirect_uri          TEXT    NOT NULL,
    state                 TEXT    NOT NULL,
    nonce                 TEXT    NOT NULL,
    scopes                TEXT    NOT NULL,
    response_type         TEXT    NOT NULL,
    response_mode         TEXT    NOT NULL,
    code_challenge        TEXT    NOT NULL,
    code_challenge_method TEXT    NOT NULL,
    prompt                TEXT    NOT NULL,
    max_age               INTEGER,
    login_hint            TEXT    NOT NULL,
    acr_values            TEXT    NOT NULL,
    ui_locales            TEXT    NOT NULL,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    user_id               TEXT    NOT NULL,
    session_id            TEXT    NOT NULL,
    auth_time             INTEGER NOT NULL,
    amr                   TEXT    NOT NULL,
    acr                   TEXT    NOT NULL,
    done                  INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);
CREATE INDEX auth_requests_user_id ON auth_requests (user_id);

-- No foreign key to auth_requests: a used code must outlive its request so that a replay
-- still finds the grant to revoke.
CREATE TABLE auth_codes (
    code_hash       TEXT    NOT NULL PRIMARY KEY,
    auth_request_id TEXT    NOT NULL,
    grant_id        TEXT    NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
) STRICT;
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);
CREATE INDEX auth_codes_auth_request_id ON auth_codes (auth_request_id);

CREATE TABLE grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    auth_time  INTEGER NOT NULL,
    amr        TEXT    NOT NULL,
    acr        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX grants_user_id ON grants (user_id);

CREATE TABLE access_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    auth_time  INTEGER NOT NULL,
    amr        TEXT    NOT NULL,
    acr        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    auth_time  INTEGER NOT NULL,
    amr        TEXT    NOT NULL,
    acr        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    user_id    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

CREATE TABLE signing_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    algorithm     TEXT    NOT NULL,
    private       BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER
) STRICT;

CREATE TABLE attempts (
    id      INTEGER NOT NULL PRIMARY KEY,
    user_id TEXT    NOT NULL,
    ip      TEXT    NOT NULL,
    success INTEGER NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX attempts_user_id_at ON attempts (user_id, at);
