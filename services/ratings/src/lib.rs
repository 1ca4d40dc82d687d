//! Bookinfo's ratings service: a drop-in replacement for Istio's Node.js ratings.
//!
//! `GET /ratings/{id}` answers `{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}`; which
//! variant answers is chosen with `SERVICE_VERSION`, one per original image:
//!
//! | version | behaviour |
//! |---|---|
//! | `v1` | fixed ratings, or the ones last POSTed for the id |
//! | `v2` | reads MySQL/MariaDB on every request (`DB_TYPE=mysql`, `MYSQL_DB_*`) |
//! | `v-faulty` | half of the requests fail with 503 |
//! | `v-delayed` | half of the requests are answered after 7 s |
//! | `v-unavailable` | 503 every other minute |
//! | `v-unhealthy` | every other 15 minutes: `/health` 500 and ratings 503 |
//!
//! Run with `ratings 9080` (or `PORT`); `RATINGS_SEED` makes the random variants
//! repeatable. The binary is a thin `main` around [`app`].

pub mod config;
pub mod db;
mod error;
pub mod faults;
pub mod id;
mod routes;
mod state;
pub mod store;

pub use error::AppError;
pub use routes::{MAX_BODY_BYTES, app};
pub use state::AppState;
