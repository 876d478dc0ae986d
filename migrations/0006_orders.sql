-- rusto schema, version 6: the real account's order reports (issue 12). In testnet and live mode every report of
-- the exchange that changes what rusto knows of its real position (a new fill, an acknowledgement, a cancel, a
-- reject, an expiry) is one row; a fill the WebSocket API answer and the user data stream both report is written
-- once (deduplicated by cumulative quantity, as the venue applies it). Paper runs write none. Prices in quote units,
-- quantities in base units, times in exchange ms, as everywhere.
--
-- A real position is tied to the paper position that produced it by (run_id, symbol, decision_ts_ms): the paper
-- position's positions.entry_ts_ms is the same decision time (schema 5), so `rusto report` can put the real fills
-- beside the paper ones of the same decision.
CREATE TABLE order_reports (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs(id),
    symbol            TEXT    NOT NULL,
    client_order_id   TEXT    NOT NULL,              -- rst-<run>-<position>-<leg><attempt>
    position          INTEGER NOT NULL,              -- the real position's number in the run (client order id)
    leg               TEXT    NOT NULL CHECK (leg IN ('entry', 'stop', 'tp1', 'tp2', 'softstop', 'shutdown', 'breakeven')),
    attempt           INTEGER NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('ack', 'partial_fill', 'fill', 'canceled', 'rejected', 'expired', 'amended')),
    side              TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    exchange_order_id INTEGER NOT NULL,              -- Binance's order id (the algo id of a conditional order)
    ts_ms             INTEGER NOT NULL,              -- exchange time of the report
    decision_ts_ms    INTEGER NOT NULL,              -- exchange time of the entry decision of the position
    price             REAL,                          -- this fill's price (fills only)
    quantity          REAL,                          -- this fill's quantity (fills only)
    cum_quantity      REAL    NOT NULL,              -- filled so far
    commission        REAL,                          -- this fill's commission, quote, positive = paid (fills only)
    realized_pnl      REAL,                          -- this fill's realised PnL, quote (fills only)
    liquidity         TEXT    CHECK (liquidity IN ('maker', 'taker')), -- fills only
    error_code        INTEGER                        -- Binance's error code (rejects only)
);
CREATE INDEX order_reports_decision ON order_reports(run_id, symbol, decision_ts_ms);
