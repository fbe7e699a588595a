-- Controller grants (docs/protocol.md, "Controller grants"): every change of control
-- gets the next epoch, and the DJ device's public key is kept with the DJ so that a
-- restarted server grants the same DJ again.
ALTER TABLE sessions ADD COLUMN controller_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN controller_device_key TEXT;
