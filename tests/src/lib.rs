//! Support code shared by calltape's integration tests.

pub mod s3_server;
