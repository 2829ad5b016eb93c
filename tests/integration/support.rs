//! Test harness: a temporary working directory, files written into it, and the binary run in it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary directory in which `dvload` runs.
pub struct Workdir {
    dir: tempfile::TempDir,
}

/// What a run of the binary printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Reads a file of the work directory as text.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Runs `dvload ARGS` in the work directory.
    pub fn dvload(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_dvload"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("DATAVERSE_URL")
            .output()
            .expect("run dvload");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The repository root (for the bundled samples and mappings).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small accounts mapping over `accounts.csv` with the given extra [fields] lines.
pub fn accounts_mapping(extra_fields: &str) -> String {
    format!(
        "[source]\npath = \"accounts.csv\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = {{ accountnumber = \"Account No\" }}\n\n[fields]\nname = \"Company\"\n{extra_fields}"
    )
}

/// The tokio runtime that serves in-process emulators while the tests run the binary.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// An emulator on an ephemeral 127.0.0.1 port, served by [`rt`]; shut down when dropped.
pub struct Emu {
    running: Option<dataverse_emulator::RunningEmulator>,
}

impl Emu {
    /// The built-in configuration.
    pub fn start() -> Emu {
        Emu::start_with(dataverse_emulator::Config::default())
    }

    /// A given configuration.
    pub fn start_with(config: dataverse_emulator::Config) -> Emu {
        let running = rt()
            .block_on(dataverse_emulator::start(config, Default::default()))
            .expect("emulator starts");
        Emu {
            running: Some(running),
        }
    }

    /// The connection variables `dvload run` reads, pointing at this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        use dataverse_emulator::defaults;
        vec![
            ("DATAVERSE_URL", self.base_url().to_string()),
            ("AZURE_AUTHORITY_HOST", self.base_url().to_string()),
            ("AZURE_TENANT_ID", defaults::TENANT_ID.to_string()),
            ("AZURE_CLIENT_ID", defaults::CLIENT_ID.to_string()),
            ("AZURE_CLIENT_SECRET", defaults::CLIENT_SECRET.to_string()),
        ]
    }

    /// The same with some variables replaced.
    pub fn env_with(&self, replace: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        for (k, v) in replace {
            env.retain(|(name, _)| name != k);
            env.push((k, v.to_string()));
        }
        env
    }
}

impl std::ops::Deref for Emu {
    type Target = dataverse_emulator::RunningEmulator;
    fn deref(&self) -> &Self::Target {
        self.running.as_ref().expect("running")
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            rt().block_on(running.shutdown());
        }
    }
}

/// Variables of the parent environment that would change how dvload connects or logs.
pub const CLEARED_ENV: &[&str] = &[
    "RUST_LOG",
    "DATAVERSE_URL",
    "DATAVERSE_ACCESS_TOKEN",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "DVLOAD_CA_CERT",
    "DVLOAD_TOKEN_ENDPOINT",
    "DVLOAD_PROFILE",
    "DVLOAD_CONFIG",
    "DVLOAD_FAIL_ON",
    "XDG_CONFIG_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
];

impl Workdir {
    /// Runs `dvload ARGS` in the work directory with exactly these connection variables.
    pub fn dvload_env<K: AsRef<str>, V: AsRef<str>>(
        &self,
        args: &[&str],
        env: &[(K, V)],
    ) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dvload"));
        cmd.args(args).current_dir(self.dir.path());
        for name in CLEARED_ENV {
            cmd.env_remove(name);
        }
        cmd.env("NO_PROXY", "127.0.0.1,localhost");
        for (k, v) in env {
            cmd.env(k.as_ref(), v.as_ref());
        }
        let out = cmd.output().expect("run dvload");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Workdir {
    /// Runs `dvload ARGS` against `emu` and SIGKILLs it the first time `reached()` is true; the
    /// run must not end before that, and must get there within two minutes.
    pub fn dvload_killed_when(&self, emu: &Emu, args: &[&str], reached: impl Fn() -> bool) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dvload"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for name in CLEARED_ENV {
            cmd.env_remove(name);
        }
        cmd.env("NO_PROXY", "127.0.0.1");
        for (k, v) in emu.env() {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn dvload");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !reached() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before its kill point"
            );
            assert!(std::time::Instant::now() < deadline, "no progress");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
    }
}

/// The counts of a `--report` file, checked: read = written + rejected + skipped overall and for
/// every job, and the totals are the jobs' sums.
#[derive(Debug, Clone)]
pub struct Report {
    pub json: serde_json::Value,
    pub read: u64,
    pub written: u64,
    pub rejected: u64,
    pub skipped: u64,
}

impl Report {
    #[track_caller]
    pub fn load(w: &Workdir, name: &str) -> Report {
        let json: serde_json::Value = serde_json::from_str(&w.read(name)).expect("report is JSON");
        let n = |v: &serde_json::Value, k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("report lacks {k}: {v}"))
        };
        let totals = [
            n(&json, "read"),
            n(&json, "written"),
            n(&json, "rejected"),
            n(&json, "skipped"),
        ];
        let unchanged = |v: &serde_json::Value| v["unchanged"].as_u64().unwrap_or(0);
        assert_eq!(
            totals[0],
            totals[1] + totals[2] + totals[3] + unchanged(&json),
            "read = written + rejected + skipped + unchanged: {json}"
        );
        let mut sums = [0u64; 4];
        for job in json["jobs"].as_array().expect("jobs") {
            let c = [
                n(job, "read"),
                n(job, "written"),
                n(job, "rejected"),
                n(job, "skipped"),
            ];
            assert_eq!(
                c[0],
                c[1] + c[2] + c[3] + unchanged(job),
                "job counts: {job}"
            );
            for (s, c) in sums.iter_mut().zip(c) {
                *s += c;
            }
        }
        assert_eq!(sums, totals, "the totals are the jobs' sums: {json}");
        Report {
            read: totals[0],
            written: totals[1],
            rejected: totals[2],
            skipped: totals[3],
            json,
        }
    }

    /// A number from the report (`retries`, `throttle_waits`, ...), looked for at the top level
    /// and then under any object member.
    #[track_caller]
    pub fn stat(&self, key: &str) -> u64 {
        fn find(v: &serde_json::Value, key: &str) -> Option<u64> {
            match v {
                serde_json::Value::Object(m) => m
                    .get(key)
                    .and_then(serde_json::Value::as_u64)
                    .or_else(|| m.values().find_map(|v| find(v, key))),
                _ => None,
            }
        }
        find(&self.json, key).unwrap_or_else(|| panic!("report has no {key}: {}", self.json))
    }
}

/// One row of a CSV rejects file.
#[derive(Debug, Clone)]
pub struct RejectRow {
    pub row: u64,
    pub error: String,
    pub fields: std::collections::HashMap<String, String>,
}

/// Reads a CSV rejects file (`dvload_row`, `dvload_error` appended to the source's columns);
/// an absent file is no rejects.
pub fn read_rejects_csv(path: &Path, delimiter: u8) -> Vec<RejectRow> {
    if !path.exists() {
        return Vec::new();
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        let fields: std::collections::HashMap<String, String> = headers
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        // A row that could not be read keeps its own fields: the two columns are the last two.
        let n = record.len();
        let row = record[n - 2]
            .parse()
            .unwrap_or_else(|_| panic!("dvload_row in {record:?}"));
        let error = record[n - 1].to_string();
        out.push(RejectRow { row, error, fields });
    }
    out
}

/// An in-process emulator on a loopback port, served by its own runtime while the test runs the
/// binary.
pub struct Emulator {
    pub runtime: tokio::runtime::Runtime,
    pub running: dataverse_emulator::RunningEmulator,
}

impl Emulator {
    /// Starts the emulator with `config`.
    pub fn start(config: dataverse_emulator::Config) -> Emulator {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime
            .block_on(dataverse_emulator::start(config, Default::default()))
            .expect("emulator starts");
        Emulator { runtime, running }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.running.base_url().to_string()
    }

    /// The environment variables of the built-in app registration, pointing at this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        use dataverse_emulator::defaults;
        vec![
            ("DATAVERSE_URL", self.url()),
            ("AZURE_AUTHORITY_HOST", self.url()),
            ("AZURE_TENANT_ID", defaults::TENANT_ID.into()),
            ("AZURE_CLIENT_ID", defaults::CLIENT_ID.into()),
            ("AZURE_CLIENT_SECRET", defaults::CLIENT_SECRET.into()),
        ]
    }

    /// A token of the built-in app for this emulator's environment.
    pub fn token(&self) -> String {
        use dataverse_emulator::defaults;
        dvload::auth::install_crypto_provider();
        let url = self.url();
        self.runtime.block_on(async {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", defaults::CLIENT_ID),
                ("client_secret", defaults::CLIENT_SECRET),
                ("scope", &format!("{url}/.default")),
            ];
            let v: serde_json::Value = reqwest::Client::new()
                .post(format!("{url}/{}/oauth2/v2.0/token", defaults::TENANT_ID))
                .form(&form)
                .send()
                .await
                .expect("token request")
                .json()
                .await
                .expect("token JSON");
            v["access_token"].as_str().expect("a token").to_string()
        })
    }
}

/// Replaces (or adds) the variable `name` in `env`.
pub fn set_var(
    env: &mut Vec<(&'static str, String)>,
    name: &'static str,
    value: impl Into<String>,
) {
    env.retain(|(k, _)| *k != name);
    env.push((name, value.into()));
}
