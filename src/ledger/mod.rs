//! What a run leaves behind: the rejects file and the JSON report (the SQLite ledger comes later).
