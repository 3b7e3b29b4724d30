-- The OpenID Connect provider in the service (src/auth/oidc.ts) keeps its
-- state here, on PGlite and Postgres alike: no in-memory adapter.

-- oidc-provider's models (Session, Interaction, AuthorizationCode, DeviceCode,
-- RefreshToken, Grant, ...), one row each, by model name and id. JWT access
-- tokens are never stored: the API verifies them with the signing keys.
CREATE TABLE oidc_models (
  model text NOT NULL,
  id text NOT NULL,
  payload jsonb NOT NULL,
  grant_id text,
  user_code text,
  uid text,
  expires_at timestamptz,
  consumed_at timestamptz,
  PRIMARY KEY (model, id)
);
CREATE INDEX oidc_models_grant_idx ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oidc_models_user_code_idx ON oidc_models (user_code) WHERE user_code IS NOT NULL;
CREATE INDEX oidc_models_uid_idx ON oidc_models (uid) WHERE uid IS NOT NULL;
CREATE INDEX oidc_models_expires_idx ON oidc_models (expires_at);

-- Token signing keys (private JWKs), made at the first start. `conduit-service
-- keys rotate` retires the signing one and makes a new one; a retired key still
-- verifies (and is published) until the tokens it signed have expired.
CREATE TABLE oidc_signing_keys (
  kid text PRIMARY KEY,
  private_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

-- Grants revoked (a logout, a revoked refresh token): their JWT access tokens
-- are refused until they would have expired anyway. The API reads this list
-- every few seconds, not per request.
CREATE TABLE oidc_revoked_grants (
  grant_id text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

-- Local accounts' passwords (scrypt), for the login page.
CREATE TABLE local_passwords (
  identity_id uuid PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
  -- `scrypt$N$r$p$salt$hash`, base64url
  password_hash text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Client identities (`conduit-service client create`): the client id is the
-- identity's id; only the secret's SHA-256 is kept (it is 32 random bytes).
CREATE TABLE oidc_clients (
  client_id uuid PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
  name text NOT NULL,
  owner_id uuid REFERENCES identities (id) ON DELETE SET NULL,
  secret_sha256 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Every login: when (`auth_time`) and how (`password`, `federated:<issuer>`,
-- `client_credentials`), for the authentication policies.
CREATE TABLE logins (
  id bigserial PRIMARY KEY,
  identity_id uuid NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  method text NOT NULL,
  auth_time timestamptz NOT NULL DEFAULT now(),
  address text
);
CREATE INDEX logins_identity_idx ON logins (identity_id, auth_time);
