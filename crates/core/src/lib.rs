//! Fiber Link's domain: money, assets, the tip state machine, keys and error codes.
//!
//! Pure: no I/O, no clock reads, no database. Everything here can be tested in isolation and is
//! shared by the API, the worker and the tools.

pub mod asset;
pub mod crypto;
pub mod error;
pub mod input;
pub mod money;
pub mod reconcile;
pub mod tip;
pub mod totp;
pub mod withdrawal;

pub use asset::{Asset, Assets, Script};
pub use error::{ApiError, ErrorCode};
pub use money::{format_decimal, parse_decimal, Amount, AmountError};
pub use tip::{decide, invoice_expiry_secs, Decision, InvoiceStatus, Schedule, TipClock, TipState};
pub use withdrawal::{
    FeeMode, FiberPayoutStep, HubPayment, OnchainConfig, Policy, Rail, WithdrawalConfig,
    WithdrawalState,
};
