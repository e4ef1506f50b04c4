-- Per-client CORS origins, a jwks_uri for private_key_jwt, the clients whose tokens a
-- resource server may introspect, and the single-use ids (jti) of client assertions.
ALTER TABLE clients ADD COLUMN web_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN resource_server_for TEXT NOT NULL DEFAULT '[]';

CREATE TABLE client_assertions (
    client_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) STRICT;
CREATE INDEX client_assertions_expires_at ON client_assertions (expires_at);
