-- rusto schema, version 1. Applied in one transaction at start; recorded in schema_version.
-- Prices are in quote units (USDT), quantities in base-asset units, times in ms since the Unix epoch
-- (exchange time for trading data; wall clock only in runs.started_at_ms / ended_at_ms).

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    version         TEXT    NOT NULL,
    config_hash     TEXT    NOT NULL,
    mode            TEXT    NOT NULL,              -- replay | live
    inputs          TEXT    NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    ended_at_ms     INTEGER,
    status          TEXT    NOT NULL DEFAULT 'running'
);

CREATE TABLE positions (
    id                    INTEGER PRIMARY KEY,
    run_id                INTEGER NOT NULL REFERENCES runs(id),
    seq                   INTEGER NOT NULL,        -- deterministic sequence within the run
    symbol                TEXT    NOT NULL,
    side                  TEXT    NOT NULL,        -- long | short
    status                TEXT    NOT NULL,        -- open | closed
    entry_ts_ms           INTEGER NOT NULL,
    entry_price           REAL    NOT NULL,
    quantity              REAL    NOT NULL,
    exit_ts_ms            INTEGER,
    exit_price            REAL,
    fees                  REAL    NOT NULL,
    pnl                   REAL,
    pnl_pct               REAL,
    exit_reason           TEXT,                    -- StopLoss | TakeProfit | TP2 | SoftStop | Liquidation | Breakeven | Shutdown
    mfe_pct               REAL,
    mae_pct               REAL,
    time_to_mfe_secs      REAL,
    time_to_mae_secs      REAL,
    regime                TEXT    NOT NULL,
    confidence            REAL    NOT NULL,
    expected_slippage_bps REAL    NOT NULL,
    realized_slippage_bps REAL    NOT NULL,
    stop_price            REAL    NOT NULL,
    tp1_price             REAL    NOT NULL,
    tp2_price             REAL    NOT NULL,
    liquidation_price     REAL    NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE INDEX positions_symbol ON positions(symbol, entry_ts_ms);

CREATE TABLE fills (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    position_id  INTEGER NOT NULL REFERENCES positions(id),
    ts_ms        INTEGER NOT NULL,
    kind         TEXT    NOT NULL,                 -- entry, or the exit reason
    side         TEXT    NOT NULL,                 -- buy | sell
    quantity     REAL    NOT NULL,
    price        REAL    NOT NULL,
    fee          REAL    NOT NULL,
    pnl          REAL    NOT NULL
);
CREATE INDEX fills_position ON fills(position_id);

CREATE TABLE entry_features (
    position_id        INTEGER PRIMARY KEY REFERENCES positions(id),
    imbalance_ratio    REAL    NOT NULL,
    cvd_1min_change    REAL    NOT NULL,
    volume_burst_ratio REAL    NOT NULL,
    bar_range_pct      REAL    NOT NULL,
    zone_distance_pct  REAL    NOT NULL,
    near_val           INTEGER NOT NULL,
    near_vah           INTEGER NOT NULL,
    near_hvn           INTEGER NOT NULL,
    regime             TEXT    NOT NULL,
    confidence         REAL    NOT NULL,
    spread_bps         REAL    NOT NULL,
    depth_ratio        REAL    NOT NULL
);

CREATE TABLE volume_burst_tuning_logs (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs(id),
    symbol         TEXT    NOT NULL,
    ts_ms          INTEGER NOT NULL,
    tuned_ratio    REAL    NOT NULL,
    previous_ratio REAL    NOT NULL,
    trades         INTEGER NOT NULL,
    win_rate_pct   REAL    NOT NULL,
    expectancy_pct REAL    NOT NULL,
    window_bars    INTEGER NOT NULL,
    lookahead_bars INTEGER NOT NULL,
    candidates     INTEGER NOT NULL,
    stop_pct       REAL    NOT NULL,
    target_pct     REAL    NOT NULL,
    fee_pct        REAL    NOT NULL,
    changed        INTEGER NOT NULL
);

-- The execution gate's symbol + UTC hour expectancy state: one row per closed trade, reloaded at start
-- (the newest `gate.lookback_trades` per symbol and hour).
CREATE TABLE hour_expectancy (
    id       INTEGER PRIMARY KEY,
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    symbol   TEXT    NOT NULL,
    hour     INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
    pnl_pct  REAL    NOT NULL
);
CREATE INDEX hour_expectancy_key ON hour_expectancy(symbol, hour, id);
