-- Conduit's schema. Plain SQL that runs unchanged on Postgres and PGlite;
-- the runner (src/store/migrate.ts) applies it in one transaction.

CREATE TABLE identities (
  id uuid PRIMARY KEY,
  -- `user@domain`
  username text NOT NULL UNIQUE,
  name text,
  email text,
  organization text,
  identity_provider text,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a token is kept: a stolen database holds no usable token.
CREATE TABLE api_tokens (
  token_sha256 text PRIMARY KEY,
  identity_id uuid NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz
);
CREATE INDEX api_tokens_identity_idx ON api_tokens (identity_id);

CREATE TABLE endpoints (
  id uuid PRIMARY KEY,
  owner_id uuid NOT NULL REFERENCES identities (id),
  name text NOT NULL,
  display_name text,
  multi_user boolean NOT NULL DEFAULT false,
  -- NULL: every function may run; otherwise a JSON array of function ids.
  allowed_functions jsonb,
  metadata jsonb NOT NULL DEFAULT '{}',
  -- What the last MEP heartbeat said; the status reported is also "offline"
  -- once the heartbeats stop (older than 3 periods).
  status text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
  last_heartbeat timestamptz,
  -- Seconds; 0 means the MEP said it is shutting down.
  heartbeat_period double precision NOT NULL DEFAULT 0,
  last_error jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_owner_idx ON endpoints (owner_id);

CREATE TABLE functions (
  id uuid PRIMARY KEY,
  owner_id uuid NOT NULL REFERENCES identities (id),
  name text,
  payload_strategy text NOT NULL,
  payload_data text NOT NULL,
  -- SHA-256 of strategy and data: the same payload registered twice by one owner keeps one id.
  payload_sha256 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (owner_id, payload_sha256)
);

CREATE TABLE task_groups (
  id uuid PRIMARY KEY,
  owner_id uuid NOT NULL REFERENCES identities (id),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ueps (
  id uuid PRIMARY KEY,
  endpoint_id uuid NOT NULL REFERENCES endpoints (id),
  identity_id uuid NOT NULL REFERENCES identities (id),
  config jsonb NOT NULL DEFAULT '{}',
  runtime jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Time of the UEP's last heartbeat.
  last_seen timestamptz
);
CREATE INDEX ueps_endpoint_idx ON ueps (endpoint_id);

-- The hot table. It has no foreign keys on purpose: the one statement that
-- inserts tasks checks (or creates) every row they refer to, and a foreign key
-- would cost five index probes per inserted task.
CREATE TABLE tasks (
  id uuid PRIMARY KEY,
  owner_id uuid NOT NULL,
  endpoint_id uuid NOT NULL,
  uep_id uuid NOT NULL,
  function_id uuid NOT NULL,
  task_group_id uuid NOT NULL,
  state text NOT NULL CHECK (
    state IN ('received', 'waiting-for-endpoint', 'running', 'success', 'failed', 'cancelled')
  ),
  -- The arguments themselves travel only through the broker; the hash tells
  -- an idempotent retry from a conflicting reuse of the task id.
  args_bytes integer NOT NULL,
  args_sha256 text NOT NULL,
  result_strategy text,
  result_data text,
  error jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
)
-- Every task is updated up to three times (waiting, running, result); free room
-- in each page lets those be HOT updates that leave the indexes alone.
WITH (fillfactor = 70);
CREATE INDEX tasks_task_group_idx ON tasks (task_group_id);
CREATE INDEX tasks_owner_created_idx ON tasks (owner_id, created_at);
