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

/// The connection variables a test controls: removed from the inherited environment, then set.
const CONNECTION_VARS: &[&str] = &[
    "DATAVERSE_URL",
    "DATAVERSE_ACCESS_TOKEN",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "DVLOAD_TOKEN_ENDPOINT",
    "DVLOAD_CA_CERT",
    "RUST_LOG",
];

impl Workdir {
    /// Runs `dvload ARGS` with exactly the connection variables `env` (others removed).
    pub fn dvload_env(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dvload"));
        cmd.args(args).current_dir(self.dir.path());
        for v in CONNECTION_VARS {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run dvload");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
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
