-- When a task reached each state before its end (the console shows the
-- timings): on the broker (waiting-for-endpoint) and handed to an engine
-- (running). Received is created_at, the end completed_at. Nullable without a
-- default, so adding them rewrites no row.
ALTER TABLE tasks ADD COLUMN waiting_at timestamptz, ADD COLUMN running_at timestamptz;
-- The console lists an owner's tasks of one endpoint, newest first.
CREATE INDEX tasks_owner_endpoint_created_idx ON tasks (owner_id, endpoint_id, created_at);
-- A UEP's engine as its last heartbeat reported it (workers, blocks), for the console.
ALTER TABLE ueps ADD COLUMN engine jsonb;
