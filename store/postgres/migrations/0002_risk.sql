-- Adaptive step-up: devices bound to users, and the audit log of step-up decisions.
CREATE TABLE devices (
    id         text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    user_agent text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (id, user_id)
);
CREATE INDEX devices_user_id ON devices (user_id);

CREATE INDEX attempts_ip_at ON attempts (ip, at);

CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    user_id      text        NOT NULL,
    client_id    text        NOT NULL,
    ip           text        NOT NULL,
    device_id    text        NOT NULL,
    device_known boolean     NOT NULL,
    ip_known     boolean     NOT NULL,
    tor          boolean     NOT NULL,
    vpn          boolean     NOT NULL,
    method       text        NOT NULL,
    outcome      text        NOT NULL,
    reason       text        NOT NULL
);
CREATE INDEX audit_events_user_id ON audit_events (user_id, id);
