//! Registries: the containers of the core's state.
//!
//! Each one stores, finds and removes; none calls a handler, knows the
//! egc, or changes another registry. Fields are private: what a registry
//! keeps in step internally (the fd registry's dense poll set and its index
//! by fd number, the abort index, the timeout heap) stays in step whatever
//! the caller does. A registry that holds callbacks is generic over their
//! type, so the handlers (which take the egc) are defined by the layer
//! above, `egc`, which orchestrates: insert → tell the application's hooks
//! → tell the pollers → attach to the ao.
//!
//! Handles are generation-checked [`Token`](crate::token::Token)s, so a
//! stale handle is recognised rather than reaching a reused slot.
#![forbid(unsafe_code)]

use crate::token::Token;

/// An asynchronous operation.
pub type AoId = Token;
/// An abortable registration of an ao.
pub type AbrtId = Token;
/// An fd registration.
pub type EvFd = Token;
/// A timeout registration.
pub type EvTime = Token;
/// A child process registration.
pub type EvChild = Token;
/// A poller.
pub type PollerId = Token;

pub mod ao;
pub mod child;
pub mod event;
pub mod fd;
pub mod fdindex;
pub mod few;
pub mod foreign;
pub mod hooks;
pub mod poller;
pub mod time;
pub mod watch;
