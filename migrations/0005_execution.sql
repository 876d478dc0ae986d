-- rusto schema, version 5: execution realism (issue 10). Fills say how they were filled and against what; positions
-- carry their funding and the times and latency of their entry. Prices in quote units and times in exchange ms, as
-- everywhere; latencies in ms (REAL: sub-millisecond figures are the common case). Rows written before version 5
-- keep NULL in every new column (0 in positions.funding): unknown, not zero.
--
-- fills.kind may now also be 'Funding': a funding payment at a funding time (price = the mark price, quantity = the
-- open quantity, fee 0, pnl = the payment: negative when paid, positive when received).
ALTER TABLE fills ADD COLUMN liquidity TEXT CHECK (liquidity IN ('maker', 'taker')); -- NULL: liquidation, funding
ALTER TABLE fills ADD COLUMN trigger_price REAL;   -- the order's reference price: stop trigger, SoftStop decision
                                                   -- price, TP limit, the entry's freshest touch at arrival, the
                                                   -- shutdown's last price; NULL for liquidation and funding
ALTER TABLE fills ADD COLUMN decision_ts_ms INTEGER; -- exchange time of the event that produced the order
ALTER TABLE fills ADD COLUMN latency_ms REAL;       -- order latency applied (decision -> exchange); 0 for exchange-side
                                                   -- triggers and funding
ALTER TABLE fills ADD COLUMN funding_rate REAL;     -- the rate settled (a fraction); funding rows only

-- positions.entry_ts_ms is, from version 5 on, the decision time (the event that produced the entry), and
-- exit_ts_ms the decision or trigger time of the last exit.
ALTER TABLE positions ADD COLUMN funding REAL NOT NULL DEFAULT 0; -- quote, included in pnl
ALTER TABLE positions ADD COLUMN bar_close_ts_ms INTEGER;   -- the signal bar's last trade
ALTER TABLE positions ADD COLUMN entry_fill_ts_ms INTEGER;  -- the first event at or after the order's arrival
ALTER TABLE positions ADD COLUMN order_latency_ms REAL;     -- order latency used for its orders
