-- High Assurance (HA). An endpoint's `high_assurance` is fixed at its first
-- registration (the registration route refuses a change either way). An HA
-- function (`ha_endpoint_id` set) runs only on that endpoint, and the
-- service's retention job deletes it once `last_used_at` (its registration or
-- its last submit) is older than --ha-function-retention-days.
ALTER TABLE endpoints ADD COLUMN high_assurance boolean NOT NULL DEFAULT false;
ALTER TABLE functions ADD COLUMN ha_endpoint_id uuid;
ALTER TABLE functions ADD COLUMN last_used_at timestamptz;

-- One row per owner, payload and HA endpoint: the same payload registered for
-- another endpoint, or without one, is another function. NULL counts as one
-- value here (COALESCE), so a payload registered twice without an endpoint
-- still keeps its id.
ALTER TABLE functions DROP CONSTRAINT functions_owner_id_payload_sha256_key;
CREATE UNIQUE INDEX functions_owner_payload_ha_idx
  ON functions (owner_id, payload_sha256, COALESCE(ha_endpoint_id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE INDEX functions_ha_last_used_idx ON functions (last_used_at) WHERE ha_endpoint_id IS NOT NULL;
