-- An email address belongs to one account at most, compared case-insensitively (empty means
-- none). This migration stops with a unique-constraint error naming users_email_lower if two
-- accounts already share an address: change one of them first (idp users update --email).
CREATE UNIQUE INDEX users_email_lower ON users (lower(email)) WHERE email <> '';
