-- Upstream OpenID Connect providers (`conduit-service idp add`): a user
-- whose domain has one signs in there, and becomes `username@domain` here.
-- The client secret is the service's credential at that provider, needed in
-- clear to use it.
CREATE TABLE upstream_idps (
  domain text PRIMARY KEY,
  issuer text NOT NULL,
  client_id text NOT NULL,
  client_secret text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
