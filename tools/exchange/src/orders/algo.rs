//! Conditional orders in the Algo service (Binance's 2025 Algo Order migration): `algoOrder.place` /
//! `algoOrder.cancel` (WebSocket API), `POST/DELETE /fapi/v1/algoOrder`, `GET /fapi/v1/openAlgoOrders`, pushed as
//! `ALGO_UPDATE` (…/user-data-streams/Event-Algo-Order-Update).
//!
//! Contract:
//! - An algo order rests in the account (not the connection) until the price its `workingType` watches (last
//!   trade for CONTRACT_PRICE, mark price for MARK_PRICE) reaches `triggerPrice`; then `ALGO_UPDATE TRIGGERING`,
//!   a MARKET order (its `orderId` is `ai`, its `clientOrderId` the `clientAlgoId`, `ot` the algo's type) walks
//!   the served book (`ALGO_UPDATE TRIGGERED` + the usual `ORDER_TRADE_UPDATE`s), and `ALGO_UPDATE FINISHED`
//!   when that order is done.
//! - closePosition takes the whole position, reduceOnly is clipped to it; a reducing algo with no position to
//!   reduce is `EXPIRED` at trigger (no order is placed). A non-reducing one that fails the margin check is
//!   `REJECTED`.
//! - Fill rule: a STOP_MARKET never fills better than its trigger price. It walks the book as it stands at the
//!   trigger moment; a level better than the trigger (a sell stop meeting bids above it, a buy stop meeting asks
//!   below it) fills at the trigger price. TAKE_PROFIT_MARKET fills at the levels' prices.
//! - Duplicate `clientAlgoId` (among open and remembered algo orders) is refused with -4116.

use std::collections::VecDeque;

use super::engine::{Account, walk};
use super::errors::ApiError;
use super::fx::Fx;
use super::types::{ApiRoute, Exec, OType, Order, Side, Status, Tif, Working};
use crate::market::Market;

/// Open algo orders allowed (Binance: 100 conditional orders per symbol; one bound for the account here).
pub const MAX_OPEN_ALGO: usize = 100;
/// Finished algo orders remembered for client-id uniqueness; older ones are evicted (counted).
pub const MAX_DONE_ALGO: usize = 10_000;

/// `algoStatus` / `X` of `ALGO_UPDATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgoStatus {
    /// In the Algo service, not triggered.
    New,
    /// Cancelled by the user.
    Canceled,
    /// Trigger met, forwarded to the matching engine.
    Triggering,
    /// Placed in the matching engine.
    Triggered,
    /// The triggered order is filled or expired.
    Finished,
    /// Denied by the matching engine (margin check).
    Rejected,
    /// Cancelled by the system (nothing to reduce).
    Expired,
}

impl AlgoStatus {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            AlgoStatus::New => "NEW",
            AlgoStatus::Canceled => "CANCELED",
            AlgoStatus::Triggering => "TRIGGERING",
            AlgoStatus::Triggered => "TRIGGERED",
            AlgoStatus::Finished => "FINISHED",
            AlgoStatus::Rejected => "REJECTED",
            AlgoStatus::Expired => "EXPIRED",
        }
    }
}

/// One conditional order in the Algo service.
#[derive(Clone, Debug)]
pub struct AlgoOrder {
    /// `algoId`.
    pub id: i64,
    /// `clientAlgoId`.
    pub client_id: String,
    /// Symbol index.
    pub sym: usize,
    /// Side.
    pub side: Side,
    /// `orderType` (STOP_MARKET or TAKE_PROFIT_MARKET).
    pub otype: OType,
    /// `quantity` (zero for closePosition).
    pub qty: Fx,
    /// `triggerPrice`.
    pub trigger: Fx,
    /// `reduceOnly`.
    pub reduce_only: bool,
    /// `closePosition`.
    pub close_position: bool,
    /// `workingType`.
    pub working: Working,
    /// `priceProtect`.
    pub price_protect: bool,
    /// `algoStatus`.
    pub status: AlgoStatus,
    /// The triggered order's id (`ai`, `actualOrderId`).
    pub order_id: Option<i64>,
    /// The triggered order's executed quantity (`aq`) and average price (`ap`).
    pub exec: Fx,
    /// See `exec`.
    pub avg: Fx,
    /// Creation time, ms.
    pub time_ms: i64,
    /// Last change, ms.
    pub update_ms: i64,
    /// Trigger time, ms (0 until triggered).
    pub trigger_ms: i64,
    /// Route it came through.
    pub route: ApiRoute,
}

/// The algo side of an account.
#[derive(Default)]
pub struct AlgoBook {
    /// Open (NEW) algo orders, oldest first.
    pub open: Vec<AlgoOrder>,
    /// Finished algo orders, oldest first.
    pub done: VecDeque<AlgoOrder>,
    /// Finished algo orders evicted from `done`.
    pub evicted: u64,
    /// Next `algoId`.
    pub next_id: i64,
    /// Counters: placed, cancelled, triggered, expired, rejected.
    pub placed: u64,
    /// See `placed`.
    pub canceled: u64,
    /// See `placed`.
    pub triggered: u64,
    /// See `placed`.
    pub expired: u64,
    /// See `placed`.
    pub rejected: u64,
}

impl AlgoBook {
    fn remember(&mut self, a: AlgoOrder) {
        if self.done.len() >= MAX_DONE_ALGO {
            self.done.pop_front();
            self.evicted += 1;
        }
        self.done.push_back(a);
    }
}

/// A validated new algo order.
pub struct NewAlgo {
    /// The order part (type, side, quantity, trigger as `stop`, flags; `client_id` is the clientAlgoId).
    pub order: super::engine::NewOrder,
}

impl Account {
    /// Places an algo order: the regular checks (tick, step, notional, margin, would-immediately-trigger), a
    /// unique clientAlgoId, then `ALGO_UPDATE NEW`.
    pub fn place_algo(&mut self, m: &Market, n: NewAlgo, now_ms: i64) -> Result<AlgoOrder, ApiError> {
        let o = n.order;
        if let Some(cid) = &o.client_id {
            let dup = self.algo.open.iter().chain(self.algo.done.iter()).any(|a| &a.client_id == cid);
            if dup {
                return Err(ApiError::new(-4116, "ClientOrderId is duplicated."));
            }
        }
        if self.algo.open.len() >= MAX_OPEN_ALGO {
            return Err(ApiError::new(-4045, "Reach max stop order limit."));
        }
        self.check_new(m, &o)?;
        self.algo.next_id = self.algo.next_id.max(1);
        let id = self.algo.next_id;
        self.algo.next_id += 1;
        let client_id = o.client_id.clone().unwrap_or_else(|| self.new_client_id(1_000_000_000 + id));
        let a = AlgoOrder {
            id,
            client_id,
            sym: o.sym,
            side: o.side,
            otype: o.otype,
            qty: o.qty.unwrap_or(Fx::ZERO),
            trigger: o.stop.unwrap_or(Fx::ZERO),
            reduce_only: o.reduce_only,
            close_position: o.close_position,
            working: o.working,
            price_protect: o.price_protect,
            status: AlgoStatus::New,
            order_id: None,
            exec: Fx::ZERO,
            avg: Fx::ZERO,
            time_ms: now_ms,
            update_ms: now_ms,
            trigger_ms: 0,
            route: o.route,
        };
        self.algo.placed += 1;
        self.algo_event(&a, now_ms);
        self.algo.open.push(a.clone());
        Ok(a)
    }

    /// Cancels an open algo order by algoId or clientAlgoId (-2011 when there is none).
    pub fn cancel_algo(&mut self, id: Option<i64>, cid: Option<&str>, now_ms: i64) -> Result<AlgoOrder, ApiError> {
        let hit = |a: &AlgoOrder| id == Some(a.id) || (id.is_none() && cid == Some(a.client_id.as_str()));
        let Some(i) = self.algo.open.iter().position(hit) else {
            return Err(ApiError::new(-2011, "Unknown order sent."));
        };
        let mut a = self.algo.open.remove(i);
        a.status = AlgoStatus::Canceled;
        a.update_ms = now_ms;
        self.algo.canceled += 1;
        self.algo_event(&a, now_ms);
        self.algo.remember(a.clone());
        Ok(a)
    }

    /// A served price for `working` on `sym`: every open algo order watching it that it reaches triggers, oldest
    /// first.
    pub fn trigger_algos(&mut self, m: &Market, sym: usize, working: Working, px: Fx, now_ms: i64) {
        let mut i = 0;
        while i < self.algo.open.len() {
            let a = &self.algo.open[i];
            if a.sym == sym && a.working == working && super::engine::triggers(a.otype, a.side, a.trigger, px) {
                let a = self.algo.open.remove(i);
                self.fire(m, a, now_ms);
            } else {
                i += 1;
            }
        }
    }

    /// One algo order triggers: TRIGGERING, then EXPIRED (nothing to reduce), REJECTED (margin), or TRIGGERED
    /// with its MARKET order walking the book, then FINISHED.
    fn fire(&mut self, m: &Market, mut a: AlgoOrder, now_ms: i64) {
        self.algo.triggered += 1;
        a.status = AlgoStatus::Triggering;
        a.update_ms = now_ms;
        a.trigger_ms = now_ms;
        self.algo_event(&a, now_ms);
        let pos = self.positions[a.sym].amt;
        let reduces = !pos.is_zero() && pos.0.signum() != a.side.sign();
        let qty = match (a.close_position, a.reduce_only) {
            (true, _) | (_, true) if !reduces => Fx::ZERO,
            (true, _) => pos.abs(),
            (_, true) => a.qty.min(pos.abs()),
            _ => a.qty,
        };
        if qty.is_zero() {
            a.status = AlgoStatus::Expired;
            self.algo.expired += 1;
        } else if !a.reduce_only && !a.close_position && !self.margin_ok(a.sym, qty, a.trigger) {
            a.status = AlgoStatus::Rejected;
            self.algo.rejected += 1;
        } else {
            let oid = self.triggered_order(m, &a, qty, now_ms);
            a.order_id = Some(oid.id);
            a.exec = oid.exec;
            a.avg = oid.avg();
            a.status = AlgoStatus::Finished;
        }
        a.update_ms = now_ms;
        self.algo_event(&a, now_ms);
        self.algo.remember(a);
    }

    /// The MARKET order of a triggered algo order: NEW, its fills (stop: never better than the trigger), the
    /// unfilled rest expired; `ALGO_UPDATE TRIGGERED` once it is in the engine. Returns the finished order.
    fn triggered_order(&mut self, m: &Market, a: &AlgoOrder, qty: Fx, now_ms: i64) -> Order {
        let id = self.take_order_id();
        let order = Order {
            id,
            client_id: a.client_id.clone(),
            sym: a.sym,
            side: a.side,
            otype: OType::Market,
            orig_type: a.otype,
            tif: Tif::Gtc,
            qty,
            price: Fx::ZERO,
            stop: a.trigger,
            reduce_only: a.reduce_only,
            close_position: a.close_position,
            working: a.working,
            price_protect: a.price_protect,
            exec: Fx::ZERO,
            cum_quote: Fx::ZERO,
            status: Status::New,
            time_ms: now_ms,
            update_ms: now_ms,
            route: a.route,
        };
        self.open.push(order);
        let idx = self.open.len() - 1;
        self.order_event(idx, Exec::New, None, now_ms);
        let mut t = a.clone();
        t.status = AlgoStatus::Triggered;
        t.order_id = Some(id);
        self.algo_event(&t, now_ms);
        let stop = a.otype == OType::StopMarket;
        let fills: Vec<(Fx, Fx)> = walk(m, a.sym, a.side, qty, None)
            .into_iter()
            .map(|(px, q)| (if stop { worse(a.side, px, a.trigger) } else { px }, q))
            .collect();
        self.fill_chunks(idx, &fills, now_ms);
        if self.open[idx].status.open() {
            self.finish(idx, Status::Expired, now_ms);
        }
        self.settle(id)
    }

    /// Queues one `ALGO_UPDATE` of `a`.
    fn algo_event(&mut self, a: &AlgoOrder, now_ms: i64) {
        let e = super::render::algo_update(self, a, now_ms);
        self.push_event(e);
    }
}

/// The worse of `px` and `limit` for a taker on `side` (a buy pays the higher, a sell gets the lower).
fn worse(side: Side, px: Fx, limit: Fx) -> Fx {
    match side {
        Side::Buy => px.max(limit),
        Side::Sell => px.min(limit),
    }
}
