//! placeholder while the service is written
fn main() {}
