//! `calltape index` (not implemented yet).

use crate::error::{AppError, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Archive or location.
    pub target: Option<String>,
}

pub async fn run(_args: Args) -> Result<i32> {
    Err(AppError::Other("'index' is not implemented yet".into()))
}
