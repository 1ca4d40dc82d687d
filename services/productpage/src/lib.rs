//! Bookinfo productpage: the book's web page and JSON API, a drop-in replacement for
//! Istio's Bookinfo `productpage`.
//!
//! Each page view calls details and reviews (which may call ratings) and renders what
//! came back; a failing backend degrades its card but the page is always a 200. The
//! outbound calls carry the tracing headers of the incoming request and the signed-in
//! user as `end-user`, so a mesh can join traces and route per user. The timeouts and
//! the reviews retry are the original's, because the fault-injection labs are built
//! on them.
//!
//! Run with `cargo run -p bookinfo-productpage` (listens on `[::]:9080`); point it at
//! the backends with `DETAILS_HOSTNAME`, `REVIEWS_HOSTNAME`, `RATINGS_HOSTNAME`,
//! `*_SERVICE_PORT` and `SERVICES_DOMAIN`.

pub mod config;
pub mod error;
pub mod form;
pub mod products;
pub mod session;
pub mod state;
pub mod upstream;
pub mod views;

mod api;
mod assets;
mod auth;
mod pages;
mod routes;

pub use config::Config;
pub use routes::app;
pub use state::{AppState, Proxy};
