-- Lockout per account and device: which device an attempt came from ("" without a device cookie).
ALTER TABLE attempts ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
CREATE INDEX attempts_user_device_at ON attempts (user_id, device_id, at);
