-- rusto schema, version 4: runs killed before they ended. At the next start on the database, a run left 'running'
-- whose process is gone is marked 'crashed' and last_row_ms records the newest timestamp among its committed rows
-- (positions' entry/exit, fills, tuning logs, symbol selections, link health; its start time if it committed none).
-- Its open paper positions are closed with exit_reason 'Crashed' (see src/persist/recover.rs).
ALTER TABLE runs ADD COLUMN last_row_ms INTEGER;
