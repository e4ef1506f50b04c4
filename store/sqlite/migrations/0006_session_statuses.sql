-- Sessions API, the guide's statuses and per-session liveness: a session may ask for a stronger
-- liveness method than its workflow's (or be escalated to one), and a Resubmitted session is
-- open again, so it joins the one-open-session-per-vendor index.
ALTER TABLE verification_sessions ADD COLUMN liveness_method TEXT NOT NULL DEFAULT '';
DROP INDEX verification_sessions_open;
CREATE UNIQUE INDEX verification_sessions_open ON verification_sessions (app_id, workflow_id, vendor_data)
    WHERE status IN ('Not Started', 'In Progress', 'Resubmitted') AND vendor_data <> '';
