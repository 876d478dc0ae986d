//! The application layer, the only one that sees the whole configuration: replay and live runs, the control loop, alerts, notifications, secrets.

pub mod alert;
pub mod config;
pub mod control;
pub mod live;
pub mod logger;
pub mod notify;
pub mod replay;
pub mod secrets;
pub mod threads;
