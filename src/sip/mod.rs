//! The SIP protocol core, sans-IO: messages, parsing, transactions, dialogs, digest auth, the
//! registrar and the endpoint that ties them together. No tokio, no sockets, no clock reads (time
//! is passed in as `now`), no SQL.

pub mod advertise;
pub mod auth;
pub mod build;
pub mod dialog;
pub mod endpoint;
pub mod framer;
pub mod header;
pub mod message;
pub mod net;
pub mod parse;
pub mod registrar;
pub mod route;
pub mod throttle;
pub mod transaction;
pub mod uri;

pub use net::PeerNet;
