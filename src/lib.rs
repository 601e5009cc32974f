//! Heldar: a snapshot kernel for IP cameras. See `DESIGN.md` §2 for how the modules fit:
//! HTTP/CLI → services → store/db, with background services as peers of the HTTP layer.

pub mod app;
pub mod auth;
pub mod bench;
pub mod camera;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod fakecam;
pub mod fd_limit;
pub mod http_server;
pub mod metrics;
pub mod models;
pub mod private_files;
pub mod routes;
pub mod schedules;
pub mod services;
pub mod snapshots;
pub mod store;
pub mod units;
pub mod web;
