//! Bookinfo details: the book's details as JSON.
//!
//! A drop-in replacement for Bookinfo's Ruby details service: `GET /details/{id}` answers
//! the same JSON with the same key order, and with `ENABLE_EXTERNAL_BOOK_SERVICE=true` (the
//! "details v2" image) it asks an external books API instead, which is what the egress lab
//! uses. Run with `cargo run -p bookinfo-details` (listens on `[::]:9080`, `PORT` overrides).

pub mod book;
pub mod config;
pub mod external;
pub mod id;
pub mod routes;

pub use config::Config;
pub use routes::app;
