-- Sessions API scoping: an application reaches only the enrolled faces of users linked to it;
-- and the hash of the portrait an open session was created with, so that a second create
-- cannot silently bring another.
CREATE TABLE application_users (
    app_id    TEXT    NOT NULL REFERENCES api_applications (id) ON DELETE CASCADE,
    user_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    via       TEXT    NOT NULL,
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id)
) STRICT;
CREATE INDEX application_users_user_id ON application_users (user_id);
ALTER TABLE verification_sessions ADD COLUMN portrait_sha256 TEXT NOT NULL DEFAULT '';
