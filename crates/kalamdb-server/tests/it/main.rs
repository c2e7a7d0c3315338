//! End-to-end tests: the real `kalamdb-server` binary over HTTP.

mod api;
mod auth;
mod auth_races;
mod bad_input;
mod chaos;
mod cli;
mod common;
mod compat;
mod crash;
mod flush;
mod http_fuzz;
mod isolation;
mod limits;
mod live;
mod live_limits;
mod live_oracle;
mod live_system;
mod moto;
mod proxy;
mod s3;
mod scheduler;
mod security;
mod storages;
mod streaming;
mod ws_client;
