//! Heldar: a snapshot kernel for IP cameras. Data flows one way — HTTP (`routes`) and the CLI
//! (`cli`) → `ops` → `capture`, `store`, `db` — with background `services` as peers of the HTTP
//! layer calling the same operations; `ops` publishes what happened on the `events` bus.
//! `docs/architecture.md` draws the layers.

pub mod app;
pub mod auth;
pub mod bench;
pub mod camera;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod encode;
pub mod error;
pub mod events;
pub mod fakecam;
pub mod fd_limit;
pub mod http_server;
pub mod metrics;
pub mod models;
pub mod onvif;
pub mod ops;
pub mod private_files;
pub mod routes;
pub mod services;
pub mod slot;
pub mod state;
pub mod store;
pub mod units;
