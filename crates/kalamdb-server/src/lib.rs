//! The KalamDB server: configuration, logging, the HTTP API, the WebSocket
//! endpoint of live queries, and lifecycle.
//!
//! Owns everything a client touches on the wire (request decoding, auth
//! headers, JSON result encoding, status codes) and the order of start-up and
//! shutdown. It must not know RocksDB keys or Parquet: all data access goes
//! through `kalamdb_core::KalamDb`.

pub mod auth;
pub mod config;
pub mod http;
pub mod lifecycle;
mod log_capture;
pub mod serve;
pub mod ws;

pub use config::ServerConfig;
