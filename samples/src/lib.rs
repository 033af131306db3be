//! Realistic simulated voice-agent calls for samples, tests and benchmarks: scripted dialogue
//! with real speech audio on both tracks, human pauses and plausible stage timings.

pub mod clips;
pub mod scripts;
pub mod sim;
pub mod synthetic;

pub use clips::Clips;
pub use scripts::SampleCall;
