-- An API token may expire (`conduit-service user add NAME --expires 90d`):
-- from then on it gets 401 saying so. NULL: it never expires (the local
-- admin's token in credentials.json, and tokens made without --expires).
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
