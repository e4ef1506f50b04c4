-- OIDC Back-Channel Logout: the URI a client registered for logout tokens, and the grants of a
-- browser session found quickly when it ends.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
CREATE INDEX grants_session_id ON grants (session_id);
