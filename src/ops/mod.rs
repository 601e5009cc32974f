//! The one service layer: every operation Heldar performs, called by the HTTP handlers, the
//! CLI's server side, the scheduler and the demo camera alike. Data flows one way — callers →
//! `ops` → `store`/`db` — and an operation never reaches back into its caller's layer.

pub mod reconcile;
