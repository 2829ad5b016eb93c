//! What a run leaves behind: the rejects file (`rejects`) and the JSON run report (`report`).

pub mod rejects;
pub mod report;

pub use rejects::{RejectContent, RejectsWriter};
pub use report::{Counts, JobReport, RunReport};
