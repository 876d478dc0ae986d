-- rusto schema, version 2: live runs store their link health and every symbol selection.
ALTER TABLE runs ADD COLUMN clock_offset_ms REAL;
ALTER TABLE runs ADD COLUMN rtt_ms REAL;

CREATE TABLE symbol_selections (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    ts_ms     INTEGER NOT NULL,               -- wall clock of the selection
    reason    TEXT    NOT NULL,               -- start | daily
    rank      INTEGER NOT NULL,
    symbol    TEXT    NOT NULL,
    quote_volume REAL                        -- NULL for manually chosen symbols
);

CREATE TABLE link_health (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    ts_ms     INTEGER NOT NULL,
    rtt_ms    REAL    NOT NULL,
    clock_offset_ms REAL NOT NULL
);
