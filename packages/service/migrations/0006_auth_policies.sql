-- Authentication policies (issue 18): projects own policies; an endpoint
-- names one at registration and the service checks it on every submit, task
-- status and result fetch. Subscriptions are ids the administrator hands out.

CREATE TABLE projects (
  id uuid PRIMARY KEY,
  display_name text NOT NULL,
  description text NOT NULL DEFAULT '',
  contact_email text,
  owner_id uuid NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_owner_idx ON projects (owner_id);

-- Domain patterns are JSON arrays of strings (`*` matches any run of characters).
CREATE TABLE auth_policies (
  id uuid PRIMARY KEY,
  project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  owner_id uuid NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  display_name text NOT NULL,
  description text NOT NULL DEFAULT '',
  domain_include jsonb NOT NULL DEFAULT '[]',
  domain_exclude jsonb NOT NULL DEFAULT '[]',
  high_assurance boolean NOT NULL DEFAULT false,
  -- Seconds; NULL: a login of any age.
  auth_timeout integer,
  required_mfa boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_policies_project_idx ON auth_policies (project_id);
CREATE INDEX auth_policies_owner_idx ON auth_policies (owner_id);

CREATE TABLE subscriptions (
  id uuid PRIMARY KEY,
  display_name text NOT NULL DEFAULT '',
  high_assurance boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- No foreign keys: an endpoint whose policy was removed under it (its
-- owner's identity removed) is refused every task, never left unguarded.
ALTER TABLE endpoints ADD COLUMN auth_policy_id uuid;
ALTER TABLE endpoints ADD COLUMN subscription_id uuid;
ALTER TABLE endpoints ADD COLUMN contact_email text;

-- How each login was made, as OpenID `amr` values (`pwd`, `otp`, `mfa`, or
-- an upstream provider's own): `required_mfa` needs a second factor.
ALTER TABLE logins ADD COLUMN amr jsonb NOT NULL DEFAULT '[]';

-- Local accounts' TOTP secrets (RFC 6238), base32. `last_step` is the time
-- step of the last code accepted: a code is good once.
CREATE TABLE totp_secrets (
  identity_id uuid PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
  secret text NOT NULL,
  confirmed boolean NOT NULL DEFAULT false,
  last_step bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
