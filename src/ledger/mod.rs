//! What a run leaves behind: the rejects file (`rejects`), the JSON run report (`report`) and the
//! SQLite run ledger (`db`, its packed forms in `packed`, locked by `lock`, fed by `journal`) behind resume, `--changed-only`, `runs` and `undo`.

pub mod db;
pub mod journal;
pub mod lock;
pub mod packed;
pub mod recorder;
pub mod rejects;
pub mod report;
pub mod session;

pub use db::{Environment, Ledger};
pub use lock::StateLock;
pub use recorder::Recorder;
pub use rejects::RejectsWriter;
pub use report::{JobReport, RunReport};
