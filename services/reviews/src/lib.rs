//! Bookinfo reviews v1/v2/v3 in one binary.
//!
//! `GET /reviews/{id}` answers two reviews of the book. v1 shows no ratings; v2 and v3
//! ask the ratings service and add stars (black in v2, red in v3). The version is chosen
//! by `SERVICE_VERSION`, or explicitly by `ENABLE_RATINGS` and `STAR_COLOR` as the
//! original images bake them. The ratings timeout is keyed on the star colour: black
//! waits 10 s, any other colour 2.5 s. That difference is the heart of the
//! fault-injection lab: productpage gives up after 2 × 3 s, so v2 waiting 10 s for a
//! delayed ratings call breaks the page, while v3's 2.5 s keeps it alive.

pub mod body;
pub mod config;
pub mod ratings;
pub mod routes;

pub use config::Config;
pub use routes::app;
