-- Secrets the service derives things from, shared by every replica through the
-- store (e.g. `broker-accounts`: the key of the derived UEP and task group
-- RabbitMQ passwords, so that a restart or another replica hands out the same
-- password without any password being stored). Written once, never updated.
CREATE TABLE service_secrets (
  name text PRIMARY KEY,
  value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
