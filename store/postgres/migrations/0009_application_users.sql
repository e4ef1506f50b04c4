-- Sessions API scoping: an application reaches only the enrolled faces of users linked to it;
-- and the hash of the portrait an open session was created with, so that a second create
-- cannot silently bring another.
CREATE TABLE application_users (
    app_id    text COLLATE "C" NOT NULL REFERENCES api_applications (id) ON DELETE CASCADE,
    user_id   text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    via       text        NOT NULL,
    linked_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX application_users_user_id ON application_users (user_id);
ALTER TABLE verification_sessions ADD COLUMN portrait_sha256 text NOT NULL DEFAULT '';
