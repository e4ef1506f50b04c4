-- Visage schema, PostgreSQL. Times are timestamptz (microseconds); durations are bigint
-- nanoseconds; string lists are text[]. Keys and usernames use the "C" collation, so uniqueness
-- and ordering are bytewise whatever the database's locale.

CREATE TABLE users (
    id             text COLLATE "C" NOT NULL PRIMARY KEY,
    username       text COLLATE "C" NOT NULL UNIQUE,
    display_name   text        NOT NULL,
    email          text        NOT NULL,
    email_verified boolean     NOT NULL,
    admin          boolean     NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE templates (
    user_id       text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    key_id        text        NOT NULL,
    model_version text        NOT NULL,
    sealed        bytea       NOT NULL CHECK (length(sealed) > 0),
    created_at    timestamptz NOT NULL
);

CREATE TABLE clients (
    id                        text COLLATE "C" NOT NULL PRIMARY KEY,
    secret_hash               text        NOT NULL,
    name                      text        NOT NULL,
    redirect_uris             text[]      NOT NULL,
    post_logout_redirect_uris text[]      NOT NULL,
    public                    boolean     NOT NULL,
    auth_method               text        NOT NULL,
    jwks                      bytea,
    first_party               boolean     NOT NULL,
    id_token_signing_alg      text        NOT NULL,
    claims_in_id_token        boolean     NOT NULL,
    access_token_ttl          bigint      NOT NULL,
    refresh_token_ttl         bigint      NOT NULL,
    created_at                timestamptz NOT NULL
);

CREATE TABLE auth_requests (
    id                    text COLLATE "C" NOT NULL PRIMARY KEY,
    client_id             text        NOT NULL,
    redirect_uri          text        NOT NULL,
    state                 text        NOT NULL,
    nonce                 text        NOT NULL,
    scopes                text[]      NOT NULL,
    response_type         text        NOT NULL,
    response_mode         text        NOT NULL,
    code_challenge        text        NOT NULL,
    code_challenge_method text        NOT NULL,
    prompt                text[]      NOT NULL,
    max_age               bigint,
    login_hint            text        NOT NULL,
    acr_values            text[]      NOT NULL,
    ui_locales            text[]      NOT NULL,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    user_id               text        NOT NULL,
    session_id            text        NOT NULL,
    auth_time             timestamptz NOT NULL,
    amr                   text[]      NOT NULL,
    acr                   text        NOT NULL,
    done                  boolean     NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);
CREATE INDEX auth_requests_user_id ON auth_requests (user_id);

-- No foreign key to auth_requests: a used code must outlive its request so that a replay
-- still finds the grant to revoke.
CREATE TABLE auth_codes (
    code_hash       text COLLATE "C" NOT NULL PRIMARY KEY,
    auth_request_id text        NOT NULL,
    grant_id        text        NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);
CREATE INDEX auth_codes_auth_request_id ON auth_codes (auth_request_id);

CREATE TABLE grants (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    client_id  text        NOT NULL,
    user_id    text        NOT NULL,
    session_id text        NOT NULL,
    scopes     text[]      NOT NULL,
    audience   text[]      NOT NULL,
    auth_time  timestamptz NOT NULL,
    amr        text[]      NOT NULL,
    acr        text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX grants_user_id ON grants (user_id);

CREATE TABLE access_tokens (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    grant_id   text        NOT NULL,
    client_id  text        NOT NULL,
    user_id    text        NOT NULL,
    scopes     text[]      NOT NULL,
    audience   text[]      NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash text COLLATE "C" NOT NULL PRIMARY KEY,
    grant_id   text        NOT NULL,
    client_id  text        NOT NULL,
    user_id    text        NOT NULL,
    scopes     text[]      NOT NULL,
    audience   text[]      NOT NULL,
    auth_time  timestamptz NOT NULL,
    amr        text[]      NOT NULL,
    acr        text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE sessions (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    user_id    text        NOT NULL,
    auth_time  timestamptz NOT NULL,
    amr        text[]      NOT NULL,
    acr        text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    user_id    text COLLATE "C" NOT NULL,
    client_id  text COLLATE "C" NOT NULL,
    scopes     text[]      NOT NULL,
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    algorithm     text        NOT NULL,
    private       bytea       NOT NULL,
    created_at    timestamptz NOT NULL,
    retired_at    timestamptz,
    publish_until timestamptz
);
CREATE INDEX signing_keys_publish_until ON signing_keys (publish_until);

CREATE TABLE attempts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text        NOT NULL,
    ip      text        NOT NULL,
    success boolean     NOT NULL,
    at      timestamptz NOT NULL
);
CREATE INDEX attempts_user_id_at ON attempts (user_id, at);
