//! The one tokio runtime of the module: the recorder's writers and uploads run on it, and
//! asyncio awaits its futures through pyo3-async-runtimes.

use tokio::runtime::Runtime;

/// Sets up the runtime (called once, when the module is imported).
pub fn init() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(2)
        .thread_name("calltape")
        .enable_all();
    pyo3_async_runtimes::tokio::init(builder);
}

pub fn runtime() -> &'static Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}
