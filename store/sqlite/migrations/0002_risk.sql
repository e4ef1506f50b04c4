-- Adaptive step-up: devices bound to users, and the audit log of step-up decisions.
CREATE TABLE devices (
    id         TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (id, user_id)
) STRICT;
CREATE INDEX devices_user_id ON devices (user_id);

-- Deleting a user deletes the devices bound to it.
CREATE TRIGGER users_delete_devices AFTER DELETE ON users
BEGIN
    DELETE FROM devices WHERE user_id = OLD.id;
END;

CREATE INDEX attempts_ip_at ON attempts (ip, at);

CREATE TABLE audit_events (
    id           INTEGER NOT NULL PRIMARY KEY,
    at           INTEGER NOT NULL,
    user_id      TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    ip           TEXT    NOT NULL,
    device_id    TEXT    NOT NULL,
    device_known INTEGER NOT NULL,
    ip_known     INTEGER NOT NULL,
    tor          INTEGER NOT NULL,
    vpn          INTEGER NOT NULL,
    method       TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_user_id ON audit_events (user_id, id);
