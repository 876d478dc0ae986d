//! Leaf vocabulary shared by every layer: clocks, exact decimals, symbols, the 64-byte market event, the records the compute thread emits, latency stages. Imports nothing from the crate.

pub(crate) mod adopt;
pub(crate) mod bounds;
pub(crate) mod clock;
pub(crate) mod decimal;
pub(crate) mod event;
pub(crate) mod latency;
pub(crate) mod order;
pub(crate) mod record;
pub(crate) mod symbols;

pub use adopt::{AdoptedPaper, AdoptedReal, AdoptedStop, Adoption};
pub use clock::now_ns;
pub use decimal::{DecimalError, Scale, parse_decimal};
pub use event::{EventKind, MarketEvent, depth_event_count, flags};
pub use order::{
    CLIENT_ID_LEN, ClientIdError, ClientOrderId, ExecKind, ExecReport, IntentKind, Leg, OrderIntent, OrderSide,
    OrderType, TimeInForce, WorkingType,
};
pub use record::{DrainCmd, ExitReason, FillKind, Liquidity, Record};
pub use symbols::{InternError, SymbolId, SymbolName, SymbolSpec, SymbolTable};
