//! Support code shared by calltape's integration tests.

pub mod child;
pub mod fault_proxy;
pub mod moto;
pub mod s3_server;
