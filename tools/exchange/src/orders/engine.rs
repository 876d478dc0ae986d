//! The matching engine of one account (one-way position mode): market orders walk the book the exchange is
//! serving, limit orders rest and fill when a served trade reaches their price, STOP_MARKET / TAKE_PROFIT_MARKET
//! trigger on the served trades (CONTRACT_PRICE) or mark prices (MARK_PRICE). Every state change queues the user
//! data stream events Binance pushes (`ORDER_TRADE_UPDATE`, `ACCOUNT_UPDATE`).
//!
//! The served book is not consumed: it is a recording, and its diff stream must stay consistent for the market
//! data clients. A market order takes each level at most up to the level's quantity, once.

use std::collections::VecDeque;

use super::algo::AlgoBook;
use super::errors::ApiError;
use super::fx::Fx;
use super::render;
use super::types::{ApiRoute, Exec, OType, Order, Side, Status, Tif, Working};
use crate::market::{Market, Tick, TickKind};

/// Finished orders remembered for status queries and client-id uniqueness; older ones are evicted (counted).
pub const MAX_DONE: usize = 10_000;
/// Open orders allowed (Binance's MAX_NUM_ORDERS filter is 200 per symbol).
pub const MAX_OPEN: usize = 200;
/// User-stream events queued between two publishes; more are dropped (counted).
pub const MAX_EVENTS: usize = 4096;
/// Client order ids the trade ledger keeps (beyond it new ids are counted, not kept).
pub const MAX_LEDGER: usize = 100_000;
/// Trades kept for `GET /fapi/v1/userTrades` (the oldest go first).
pub const MAX_TRADES: usize = 100_000;

/// One trade of the account, as `GET /fapi/v1/userTrades` lists it.
#[derive(Clone, Debug)]
pub struct UserTrade {
    /// Symbol index.
    pub sym: usize,
    /// The order's id.
    pub order_id: i64,
    /// The order's side.
    pub side: super::types::Side,
    /// The fill.
    pub fill: Fill,
    /// Exchange time, ms.
    pub time_ms: i64,
}

/// What the exchange executed for one client order id (the `userTrades` of an order, summed): the record a
/// client's own books are checked against.
#[derive(Clone, Debug, Default)]
pub struct LedgerEntry {
    /// Symbol index.
    pub sym: usize,
    /// Fills.
    pub fills: u64,
    /// Quantity filled.
    pub qty: Fx,
    /// Σ price × quantity.
    pub quote: Fx,
    /// Commission charged (positive: paid).
    pub commission: Fx,
    /// Realised PnL.
    pub realized: Fx,
}

/// Exchange-info facts of one symbol the engine needs.
#[derive(Clone, Debug)]
pub struct SymSpec {
    /// Upper-case name.
    pub name: String,
    /// tickSize.
    pub tick: Fx,
    /// stepSize.
    pub step: Fx,
    /// pricePrecision.
    pub pp: u8,
    /// quantityPrecision.
    pub qp: u8,
    /// MIN_NOTIONAL filter's `notional`.
    pub min_notional: Fx,
}

/// Account settings.
#[derive(Clone, Debug)]
pub struct AccountCfg {
    /// Symbols, by market index.
    pub syms: Vec<SymSpec>,
    /// Starting USDT wallet balance.
    pub balance: Fx,
    /// Taker commission rate.
    pub taker: Fx,
    /// Maker commission rate.
    pub maker: Fx,
    /// Initial leverage of every symbol.
    pub leverage: u32,
    /// A MARKET order's fills come in this many chunks (`--partial-fills`; 1: one fill per book level).
    pub partial_fills: u32,
}

/// The one-way position of a symbol.
#[derive(Clone, Debug, Default)]
pub struct Position {
    /// `positionAmt` (negative: short).
    pub amt: Fx,
    /// `entryPrice`.
    pub entry: Fx,
    /// Realised PnL accumulated (`cr`).
    pub realised: Fx,
    /// Leverage.
    pub leverage: u32,
    /// Isolated margin type.
    pub isolated: bool,
    /// Last change, ms.
    pub update_ms: i64,
}

/// A validated new order.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// Symbol index.
    pub sym: usize,
    /// Side.
    pub side: Side,
    /// Type.
    pub otype: OType,
    /// timeInForce (GTC unless given).
    pub tif: Tif,
    /// quantity.
    pub qty: Option<Fx>,
    /// price.
    pub price: Option<Fx>,
    /// stopPrice.
    pub stop: Option<Fx>,
    /// reduceOnly.
    pub reduce_only: bool,
    /// closePosition.
    pub close_position: bool,
    /// workingType.
    pub working: Working,
    /// priceProtect.
    pub price_protect: bool,
    /// newClientOrderId.
    pub client_id: Option<String>,
    /// Route.
    pub route: ApiRoute,
}

/// Per-route order counters.
#[derive(Clone, Debug, Default)]
pub struct RouteCounts {
    /// Order placements received (authenticated or not).
    pub received: u64,
    /// Placements accepted.
    pub accepted: u64,
    /// Placements rejected, by code.
    pub rejected: std::collections::BTreeMap<i64, u64>,
    /// Orders that reached FILLED.
    pub filled: u64,
    /// Cancels done.
    pub canceled: u64,
    /// Modifications done.
    pub modified: u64,
    /// Every request on the order API (placements, cancels, queries, account, listenKey), answered or not.
    pub requests: u64,
    /// Requests that carried a `signature` parameter.
    pub signed: u64,
    /// Requests authorised by a logged-on WebSocket API session (no signature needed).
    pub by_session: u64,
    /// `session.logon` requests, refused ones included.
    pub logon_requests: u64,
    /// Successful `session.logon`s.
    pub logons: u64,
}

/// One fill, for the events.
#[derive(Clone, Debug)]
pub struct Fill {
    /// Price.
    pub px: Fx,
    /// Quantity.
    pub qty: Fx,
    /// Commission (positive: paid).
    pub fee: Fx,
    /// Realised PnL of this fill.
    pub rp: Fx,
    /// Trade id.
    pub trade_id: i64,
    /// Maker side.
    pub maker: bool,
}

/// The account: wallet, positions, orders, the events to push.
pub struct Account {
    /// Settings.
    pub cfg: AccountCfg,
    /// USDT wallet balance.
    pub wallet: Fx,
    /// Positions, by symbol.
    pub positions: Vec<Position>,
    /// Open orders, oldest first.
    pub open: Vec<Order>,
    /// Finished orders, oldest first.
    pub done: VecDeque<Order>,
    /// Finished orders evicted from `done`.
    pub done_evicted: u64,
    next_order_id: i64,
    next_trade_id: i64,
    /// Last served trade price, by symbol.
    pub last: Vec<Option<Fx>>,
    /// Last served mark price, by symbol.
    pub mark: Vec<Option<Fx>>,
    /// Events queued for the user data stream.
    pub events: Vec<String>,
    /// Events dropped because [`MAX_EVENTS`] were queued.
    pub events_dropped: u64,
    /// Counters by route.
    pub counts: [RouteCounts; 2],
    /// Stops triggered.
    pub triggered: u64,
    /// Conditional orders in the Algo service.
    pub algo: AlgoBook,
    /// Executions by client order id (bounded by [`MAX_LEDGER`]).
    pub ledger: std::collections::BTreeMap<String, LedgerEntry>,
    /// Client order ids that filled while the ledger was full.
    pub ledger_overflow: u64,
    /// The latest trades (bounded by [`MAX_TRADES`]).
    pub trades: VecDeque<UserTrade>,
}

impl Account {
    /// A fresh account.
    pub fn new(cfg: AccountCfg) -> Account {
        let n = cfg.syms.len();
        let positions = (0..n).map(|_| Position { leverage: cfg.leverage, ..Position::default() }).collect();
        Account {
            wallet: cfg.balance,
            cfg,
            positions,
            open: Vec::new(),
            done: VecDeque::new(),
            done_evicted: 0,
            next_order_id: 1,
            next_trade_id: 1,
            last: vec![None; n],
            mark: vec![None; n],
            events: Vec::new(),
            events_dropped: 0,
            counts: Default::default(),
            triggered: 0,
            algo: AlgoBook::default(),
            ledger: std::collections::BTreeMap::new(),
            ledger_overflow: 0,
            trades: VecDeque::new(),
        }
    }

    pub(super) fn push_event(&mut self, e: String) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(e);
        } else {
            self.events_dropped += 1;
        }
    }

    /// An order by id or client id among open and remembered orders.
    pub fn find(&self, sym: usize, id: Option<i64>, cid: Option<&str>) -> Option<&Order> {
        let hit =
            |o: &&Order| o.sym == sym && (id == Some(o.id) || (id.is_none() && cid == Some(o.client_id.as_str())));
        self.open.iter().find(hit).or_else(|| self.done.iter().rev().find(hit))
    }

    fn open_index(&self, sym: usize, id: Option<i64>, cid: Option<&str>) -> Option<usize> {
        self.open
            .iter()
            .position(|o| o.sym == sym && (id == Some(o.id) || (id.is_none() && cid == Some(o.client_id.as_str()))))
    }

    /// Margin tied up: positions at entry plus open non-reducing orders, each ÷ leverage.
    fn used_margin(&self) -> Fx {
        let mut used = Fx::ZERO;
        for p in &self.positions {
            used += p.amt.abs().mul(p.entry).div(Fx(i128::from(p.leverage.max(1)) * super::fx::ONE));
        }
        for o in self.open.iter().filter(|o| !o.reduce_only && !o.close_position) {
            let px = if o.price.is_zero() { o.stop } else { o.price };
            let lev = self.positions[o.sym].leverage.max(1);
            used += o.remaining().mul(px).div(Fx(i128::from(lev) * super::fx::ONE));
        }
        used
    }

    /// Unrealised PnL of a position at the mark (or last) price.
    pub fn unrealised(&self, sym: usize) -> Fx {
        let p = &self.positions[sym];
        match self.mark[sym].or(self.last[sym]) {
            Some(px) if !p.amt.is_zero() => (px - p.entry).mul(p.amt),
            _ => Fx::ZERO,
        }
    }

    pub(super) fn new_client_id(&self, id: i64) -> String {
        // Binance generates 22 characters when newClientOrderId is not sent; these are distinct per order id.
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut x = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D;
        (0..22)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ALPHA[(x % ALPHA.len() as u64) as usize] as char
            })
            .collect()
    }

    /// Places an order: checks, the NEW event, then immediate execution. Returns (the order as accepted, the
    /// order after its immediate execution).
    pub fn place(&mut self, m: &Market, o: NewOrder, now_ms: i64) -> Result<(Order, Order), ApiError> {
        self.check_new(m, &o)?;
        let id = self.take_order_id();
        let client_id = o.client_id.clone().unwrap_or_else(|| self.new_client_id(id));
        let order = Order {
            id,
            client_id,
            sym: o.sym,
            side: o.side,
            otype: o.otype,
            orig_type: o.otype,
            tif: o.tif,
            qty: o.qty.unwrap_or(Fx::ZERO),
            price: o.price.unwrap_or(Fx::ZERO),
            stop: o.stop.unwrap_or(Fx::ZERO),
            reduce_only: o.reduce_only,
            close_position: o.close_position,
            working: o.working,
            price_protect: o.price_protect,
            exec: Fx::ZERO,
            cum_quote: Fx::ZERO,
            status: Status::New,
            time_ms: now_ms,
            update_ms: now_ms,
            route: o.route,
        };
        let accepted = order.clone();
        self.open.push(order);
        let idx = self.open.len() - 1;
        self.order_event(idx, Exec::New, None, now_ms);
        match o.otype {
            OType::Market => self.take(m, idx, None, now_ms),
            OType::Limit => self.limit_on_entry(m, idx, now_ms),
            OType::StopMarket | OType::TakeProfitMarket => {}
        }
        let after = self.settle(id);
        Ok((accepted, after))
    }

    /// Removes a finished order from the open list (remembering it) and returns the order's current state.
    pub(super) fn settle(&mut self, id: i64) -> Order {
        if let Some(i) = self.open.iter().position(|o| o.id == id) {
            if self.open[i].status.open() {
                return self.open[i].clone();
            }
            let o = self.open.remove(i);
            self.remember(o.clone());
            return o;
        }
        self.done.iter().rev().find(|o| o.id == id).cloned().unwrap_or_else(|| unreachable_order(id))
    }

    fn remember(&mut self, o: Order) {
        if o.status == Status::Filled {
            self.counts[o.route.index()].filled += 1;
        }
        if self.done.len() >= MAX_DONE {
            self.done.pop_front();
            self.done_evicted += 1;
        }
        self.done.push_back(o);
    }

    /// Moves every finished order out of the open list.
    fn settle_all(&mut self) {
        let mut i = 0;
        while i < self.open.len() {
            if self.open[i].status.open() {
                i += 1;
            } else {
                let o = self.open.remove(i);
                self.remember(o);
            }
        }
    }

    pub(super) fn check_new(&self, m: &Market, o: &NewOrder) -> Result<(), ApiError> {
        let spec = &self.cfg.syms[o.sym];
        if let Some(cid) = &o.client_id {
            let ok = !cid.is_empty()
                && cid.len() <= 36
                && cid.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b));
            if !ok {
                return Err(ApiError::new(-4015, "Client order id is not valid."));
            }
            // Unique among open orders (the docs' rule) and, stricter, among the finished orders remembered, so
            // a resend after a lost acknowledgement can never execute twice.
            if self.open.iter().chain(self.done.iter()).any(|x| &x.client_id == cid) {
                return Err(ApiError::new(-4116, "ClientOrderId is duplicated."));
            }
        }
        if self.open.len() >= MAX_OPEN {
            return Err(ApiError::new(-4025, "Max open order limit reached."));
        }
        if o.close_position && (!o.otype.conditional() || o.qty.is_some() || o.reduce_only) {
            return Err(ApiError::new(-1106, "Parameter 'closePosition' sent when not required."));
        }
        if let Some(q) = o.qty {
            if q <= Fx::ZERO {
                return Err(ApiError::new(-4003, "Quantity less than or equal to zero."));
            }
            if !q.is_multiple_of(spec.step) {
                return Err(ApiError::new(-1111, "Precision is over the maximum defined for this asset."));
            }
        }
        for p in [o.price, o.stop].into_iter().flatten() {
            if p <= Fx::ZERO {
                return Err(ApiError::new(-4001, "Price less than 0."));
            }
            if !p.is_multiple_of(spec.tick) {
                return Err(ApiError::new(-4014, "Price not increased by tick size."));
            }
        }
        let pos = self.positions[o.sym].amt;
        if o.reduce_only && !o.otype.conditional() && (pos.is_zero() || pos.0.signum() == o.side.sign()) {
            return Err(ApiError::new(-2022, "ReduceOnly Order is rejected."));
        }
        if let Some(stop) = o.stop
            && let Some(px) = self.reference(o.sym, o.working)
            && triggers(o.otype, o.side, stop, px)
        {
            return Err(ApiError::new(-2021, "Order would immediately trigger."));
        }
        if o.reduce_only || o.close_position {
            return Ok(());
        }
        let Some(qty) = o.qty else { return Ok(()) };
        let px = o.price.or(o.stop).or_else(|| best(m, o.sym, o.side)).unwrap_or(Fx::ZERO);
        let notional = qty.mul(px);
        if notional < spec.min_notional {
            let msg = format!(
                "Order's notional must be no smaller than {} (unless you choose reduce only).",
                trim(spec.min_notional)
            );
            return Err(ApiError { code: -4164, msg });
        }
        let lev = Fx(i128::from(self.positions[o.sym].leverage.max(1)) * super::fx::ONE);
        if notional.div(lev) > self.wallet - self.used_margin() {
            return Err(ApiError::new(-2019, "Margin is insufficient."));
        }
        Ok(())
    }

    /// The price a conditional order of `working` type watches.
    fn reference(&self, sym: usize, working: Working) -> Option<Fx> {
        match working {
            Working::Contract => self.last[sym],
            Working::Mark => self.mark[sym],
        }
    }

    /// A LIMIT order on entry: the marketable part takes the book up to its price (FOK: all or nothing; GTX:
    /// expires if marketable), the rest rests (GTC) or expires (IOC, FOK).
    fn limit_on_entry(&mut self, m: &Market, idx: usize, now_ms: i64) {
        let o = &self.open[idx];
        let marketable = best(m, o.sym, o.side).is_some_and(|b| crosses(o.side, o.price, b));
        match o.tif {
            Tif::Gtx if marketable => self.finish(idx, Status::Expired, now_ms),
            Tif::Fok => {
                let avail: Fx = walk(m, o.sym, o.side, o.remaining(), Some(o.price))
                    .iter()
                    .map(|f| f.1)
                    .fold(Fx::ZERO, |a, b| a + b);
                if avail < o.remaining() {
                    self.finish(idx, Status::Expired, now_ms);
                } else {
                    self.take(m, idx, Some(self.open[idx].price), now_ms);
                }
            }
            _ if marketable => {
                let px = o.price;
                self.take(m, idx, Some(px), now_ms);
                let o = &self.open[idx];
                if o.status.open() && o.tif == Tif::Ioc {
                    self.finish(idx, Status::Expired, now_ms);
                }
            }
            Tif::Ioc => self.finish(idx, Status::Expired, now_ms),
            _ => {}
        }
    }

    /// Cancels or expires an open order with its event.
    pub(super) fn finish(&mut self, idx: usize, st: Status, now_ms: i64) {
        let o = &mut self.open[idx];
        o.status = st;
        o.update_ms = now_ms;
        let x = if st == Status::Canceled { Exec::Canceled } else { Exec::Expired };
        self.order_event(idx, x, None, now_ms);
    }

    /// The quantity an order may still execute now: its remainder, clipped to the position for reduceOnly and
    /// the whole position for closePosition; zero when a reducing order would not reduce.
    fn executable(&self, idx: usize) -> Fx {
        let o = &self.open[idx];
        let pos = self.positions[o.sym].amt;
        let reduces = !pos.is_zero() && pos.0.signum() != o.side.sign();
        if o.close_position {
            return if reduces { pos.abs() } else { Fx::ZERO };
        }
        if o.reduce_only {
            return if reduces { o.remaining().min(pos.abs()) } else { Fx::ZERO };
        }
        o.remaining()
    }

    /// Takes liquidity from the served book for order `idx` (taker fills at the levels' prices), up to `limit`;
    /// a market order's unfillable rest expires.
    fn take(&mut self, m: &Market, idx: usize, limit: Option<Fx>, now_ms: i64) {
        let qty = self.executable(idx);
        if qty.is_zero() {
            self.finish(idx, Status::Expired, now_ms);
            return;
        }
        let (sym, side) = (self.open[idx].sym, self.open[idx].side);
        if self.open[idx].close_position {
            self.open[idx].qty = qty;
        }
        let fills = walk(m, sym, side, qty, limit);
        self.fill_chunks(idx, &fills, now_ms);
        let o = &self.open[idx];
        if o.status.open() && o.otype == OType::Market {
            self.finish(idx, Status::Expired, now_ms);
        }
    }

    /// The next `orderId`.
    pub(super) fn take_order_id(&mut self) -> i64 {
        let id = self.next_order_id;
        self.next_order_id += 1;
        id
    }

    /// True when a non-reducing order of `qty` at `px` on `sym` fits the free margin.
    pub(super) fn margin_ok(&self, sym: usize, qty: Fx, px: Fx) -> bool {
        let lev = Fx(i128::from(self.positions[sym].leverage.max(1)) * super::fx::ONE);
        qty.mul(px).div(lev) <= self.wallet - self.used_margin()
    }

    /// Applies taker fills (price, quantity) of a MARKET order `idx`. With `partial_fills` N > 1 of a MARKET
    /// order, the total is cut into N chunks of equal quantity (rounded down to the step, the last takes the
    /// rest) and each chunk fills at its levels' prices: N `TRADE` events when the chunks stay within one level,
    /// one more per level boundary a chunk crosses.
    pub(super) fn fill_chunks(&mut self, idx: usize, fills: &[(Fx, Fx)], now_ms: i64) {
        let n = self.cfg.partial_fills.max(1);
        let total = fills.iter().fold(Fx::ZERO, |a, f| a + f.1);
        let step = self.cfg.syms[self.open[idx].sym].step;
        let chunk = Fx((total.0 / i128::from(n)) / step.0.max(1) * step.0.max(1));
        if n == 1 || self.open[idx].otype != OType::Market || chunk.is_zero() {
            for &(px, q) in fills {
                self.fill(idx, px, q, false, now_ms);
            }
            return;
        }
        let mut cut = Vec::new();
        let mut left_in_chunk = chunk;
        let mut chunks_done = 1;
        for &(px, mut q) in fills {
            while !q.is_zero() {
                let take = if chunks_done == n { q } else { q.min(left_in_chunk) };
                cut.push((px, take));
                q -= take;
                left_in_chunk -= take;
                if left_in_chunk.is_zero() && chunks_done < n {
                    chunks_done += 1;
                    left_in_chunk = chunk;
                }
            }
        }
        for (px, q) in cut {
            self.fill(idx, px, q, false, now_ms);
        }
    }

    /// Applies one fill of order `idx`: order state, position, wallet, and the two events.
    fn fill(&mut self, idx: usize, px: Fx, qty: Fx, maker: bool, now_ms: i64) {
        let rate = if maker { self.cfg.maker } else { self.cfg.taker };
        let fee = px.mul(qty).mul(rate);
        let (sym, side) = (self.open[idx].sym, self.open[idx].side);
        let rp = self.apply_position(sym, side, px, qty, now_ms);
        self.wallet += rp - fee;
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        let o = &mut self.open[idx];
        o.exec += qty;
        o.cum_quote += px.mul(qty);
        o.update_ms = now_ms;
        o.status = if o.remaining() <= Fx::ZERO { Status::Filled } else { Status::PartiallyFilled };
        let f = Fill { px, qty, fee, rp, trade_id, maker };
        self.book_ledger(idx, &f);
        if self.trades.len() >= MAX_TRADES {
            self.trades.pop_front();
        }
        let (order_id, side) = (self.open[idx].id, self.open[idx].side);
        self.trades.push_back(UserTrade { sym, order_id, side, fill: f.clone(), time_ms: now_ms });
        self.order_event(idx, Exec::Trade, Some(&f), now_ms);
        let e = render::account_update(self, sym, now_ms);
        self.push_event(e);
    }

    /// Adds a fill of order `idx` to the ledger of its client order id.
    fn book_ledger(&mut self, idx: usize, f: &Fill) {
        let (cid, sym) = (&self.open[idx].client_id, self.open[idx].sym);
        if !self.ledger.contains_key(cid) && self.ledger.len() >= MAX_LEDGER {
            self.ledger_overflow += 1;
            return;
        }
        let e = self.ledger.entry(cid.clone()).or_insert_with(|| LedgerEntry { sym, ..LedgerEntry::default() });
        e.fills += 1;
        e.qty += f.qty;
        e.quote += f.px.mul(f.qty);
        e.commission += f.fee;
        e.realized += f.rp;
    }

    /// Moves a one-way position by a fill; returns the realised PnL.
    fn apply_position(&mut self, sym: usize, side: Side, px: Fx, qty: Fx, now_ms: i64) -> Fx {
        let p = &mut self.positions[sym];
        let signed = Fx(qty.0 * side.sign());
        p.update_ms = now_ms;
        if p.amt.is_zero() || p.amt.0.signum() == side.sign() {
            let total = p.amt.abs() + qty;
            p.entry = (p.entry.mul(p.amt.abs()) + px.mul(qty)).div(total);
            p.amt += signed;
            return Fx::ZERO;
        }
        let closed = qty.min(p.amt.abs());
        let rp = (px - p.entry).mul(closed).times(p.amt.0.signum());
        p.realised += rp;
        p.amt += signed;
        if p.amt.is_zero() {
            p.entry = Fx::ZERO;
        } else if p.amt.0.signum() == side.sign() {
            p.entry = px;
        }
        rp
    }

    pub(super) fn order_event(&mut self, idx: usize, x: Exec, f: Option<&Fill>, now_ms: i64) {
        let e = render::order_trade_update(self, &self.open[idx], x, f, now_ms);
        self.push_event(e);
    }

    /// A served trade or mark price: resting limits fill (maker, at their price, up to the trade's quantity in
    /// time priority), then the conditional orders watching this price trigger.
    pub fn on_tick(&mut self, m: &Market, t: &Tick, now_ms: i64) {
        let Some(px) = Fx::parse(&t.px) else { return };
        if t.sym >= self.last.len() {
            return;
        }
        match t.kind {
            TickKind::Trade => {
                self.last[t.sym] = Some(px);
                let mut avail = Fx::parse(&t.qty).unwrap_or(Fx::ZERO);
                for idx in 0..self.open.len() {
                    let o = &self.open[idx];
                    if avail.is_zero() {
                        break;
                    }
                    if o.sym != t.sym || o.otype != OType::Limit || !o.status.open() || !crosses(o.side, o.price, px) {
                        continue;
                    }
                    let q = self.executable(idx).min(avail);
                    if q.is_zero() {
                        self.finish(idx, Status::Expired, now_ms);
                        continue;
                    }
                    avail -= q;
                    let price = self.open[idx].price;
                    self.fill(idx, price, q, true, now_ms);
                }
            }
            TickKind::Mark => self.mark[t.sym] = Some(px),
        }
        let working = if t.kind == TickKind::Trade { Working::Contract } else { Working::Mark };
        for idx in 0..self.open.len() {
            let o = &self.open[idx];
            if o.sym == t.sym && o.otype.conditional() && o.working == working && triggers(o.otype, o.side, o.stop, px)
            {
                self.trigger(m, idx, now_ms);
            }
        }
        self.settle_all();
        self.trigger_algos(m, t.sym, working, px, now_ms);
    }

    /// A conditional order triggers: it becomes a MARKET order (the user stream's `o`) and takes the book.
    fn trigger(&mut self, m: &Market, idx: usize, now_ms: i64) {
        self.triggered += 1;
        self.open[idx].otype = OType::Market;
        self.open[idx].update_ms = now_ms;
        self.order_event(idx, Exec::New, None, now_ms);
        self.take(m, idx, None, now_ms);
    }

    /// Cancels an open order.
    pub fn cancel(
        &mut self,
        sym: usize,
        id: Option<i64>,
        cid: Option<&str>,
        route: ApiRoute,
        now_ms: i64,
    ) -> Result<Order, ApiError> {
        let Some(idx) = self.open_index(sym, id, cid) else {
            return Err(ApiError::new(-2011, "Unknown order sent."));
        };
        self.finish(idx, Status::Canceled, now_ms);
        self.counts[route.index()].canceled += 1;
        let oid = self.open[idx].id;
        Ok(self.settle(oid))
    }

    /// Modifies an open LIMIT order's price and quantity (`order.modify`, `PUT /fapi/v1/order`).
    #[allow(clippy::too_many_arguments)]
    pub fn modify(
        &mut self,
        m: &Market,
        sym: usize,
        id: Option<i64>,
        cid: Option<&str>,
        side: Side,
        qty: Fx,
        price: Fx,
        route: ApiRoute,
        now_ms: i64,
    ) -> Result<Order, ApiError> {
        let Some(idx) = self.open_index(sym, id, cid) else {
            return Err(ApiError::new(-2013, "Order does not exist."));
        };
        let spec = &self.cfg.syms[sym];
        let o = &self.open[idx];
        if o.otype != OType::Limit || o.side != side {
            return Err(ApiError::new(-4028, "Invalid order type for modification."));
        }
        if qty <= o.exec || !qty.is_multiple_of(spec.step) || !price.is_multiple_of(spec.tick) || price <= Fx::ZERO {
            return Err(ApiError::new(-4028, "Invalid quantity or price for modification."));
        }
        let o = &mut self.open[idx];
        o.qty = qty;
        o.price = price;
        o.update_ms = now_ms;
        self.counts[route.index()].modified += 1;
        self.order_event(idx, Exec::Amendment, None, now_ms);
        if best(m, sym, side).is_some_and(|b| crosses(side, price, b)) {
            self.take(m, idx, Some(price), now_ms);
        }
        let oid = self.open[idx].id;
        Ok(self.settle(oid))
    }
}

fn unreachable_order(id: i64) -> Order {
    // `settle` is only called with the id of an order this account holds; keep a typed answer anyway.
    Order {
        id,
        client_id: String::new(),
        sym: 0,
        side: Side::Buy,
        otype: OType::Market,
        orig_type: OType::Market,
        tif: Tif::Gtc,
        qty: Fx::ZERO,
        price: Fx::ZERO,
        stop: Fx::ZERO,
        reduce_only: false,
        close_position: false,
        working: Working::Contract,
        price_protect: false,
        exec: Fx::ZERO,
        cum_quote: Fx::ZERO,
        status: Status::Expired,
        time_ms: 0,
        update_ms: 0,
        route: ApiRoute::Rest,
    }
}

/// True when a conditional order of `t`/`side` with `stop` triggers at price `px`.
pub fn triggers(t: OType, side: Side, stop: Fx, px: Fx) -> bool {
    match (t, side) {
        (OType::StopMarket, Side::Buy) | (OType::TakeProfitMarket, Side::Sell) => px >= stop,
        (OType::StopMarket, Side::Sell) | (OType::TakeProfitMarket, Side::Buy) => px <= stop,
        _ => false,
    }
}

/// True when a limit at `limit` on `side` executes against price `px`.
pub fn crosses(side: Side, limit: Fx, px: Fx) -> bool {
    match side {
        Side::Buy => px <= limit,
        Side::Sell => px >= limit,
    }
}

/// The best level a taker on `side` meets.
pub fn best(m: &Market, sym: usize, side: Side) -> Option<Fx> {
    m.taker_levels(sym, side == Side::Buy).next().and_then(|(p, _)| Fx::parse(p))
}

/// The fills a taker of `qty` on `side` gets from the served book, up to `limit`: (price, quantity), best first.
pub fn walk(m: &Market, sym: usize, side: Side, qty: Fx, limit: Option<Fx>) -> Vec<(Fx, Fx)> {
    let mut left = qty;
    let mut out = Vec::new();
    for (p, q) in m.taker_levels(sym, side == Side::Buy) {
        if left.is_zero() {
            break;
        }
        let (Some(px), Some(lq)) = (Fx::parse(p), Fx::parse(q)) else { continue };
        if limit.is_some_and(|l| !crosses(side, l, px)) {
            break;
        }
        let take = left.min(lq);
        out.push((px, take));
        left -= take;
    }
    out
}

/// A number without trailing zeros (`5`, `0.5`).
pub fn trim(v: Fx) -> String {
    let s = v.fmt(8);
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}
