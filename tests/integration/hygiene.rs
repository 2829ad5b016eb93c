//! Hygiene of the binary's edges: connection settings checked before anything is recorded,
//! secrets never echoed, plain logs in files, quiet ends on a closed stdout, one OS reason per
//! error, a ready token's 401, a running run in `dvload runs`, and `--bypass-logic`'s value.

use std::process::{Command, Stdio};

use dataverse_emulator::Config;

use crate::support::{Emulator, Workdir, accounts_mapping};

const NO_ENV: &[(&str, &str)] = &[];

/// A workdir with a small accounts mapping `m.toml` over `accounts.csv`.
fn accounts_job() -> Workdir {
    let w = Workdir::new();
    w.write(
        "accounts.csv",
        "Account No,Company\nA-1,Contoso\nA-2,Fabrikam\n",
    );
    w.write("m.toml", accounts_mapping(""));
    w
}

// ---------------------------------------------------------------------------------------------
// Missing connection settings: a usage error, all listed at once, before anything is recorded.

#[test]
fn missing_settings_exit_2_listing_every_variable_before_the_ledger_is_touched() {
    let w = accounts_job();
    let out = w.dvload_env(&["run", "m.toml"], NO_ENV);
    out.expect_code(2)
        .stderr_has("the connection settings have 4 problems:")
        .stderr_has("DATAVERSE_URL is not set")
        .stderr_has("AZURE_TENANT_ID is not set")
        .stderr_has("AZURE_CLIENT_ID is not set")
        .stderr_has("no credential is set");
    assert!(
        !w.path().join(".dvload").exists(),
        "no state directory (no lock, no ledger, no run recorded)"
    );
    assert!(!out.stdout.contains("run ledger"), "{}", out.stdout);
}

#[test]
fn missing_settings_of_whoami_and_undo_exit_2_listing_every_variable() {
    let w = accounts_job();
    for args in [&["whoami"][..], &["undo", "1", "--state", "st", "--yes"]] {
        w.dvload_env(args, &[("AZURE_CLIENT_ID", "c")])
            .expect_code(2)
            .stderr_has("the connection settings have 3 problems:")
            .stderr_has("DATAVERSE_URL is not set")
            .stderr_has("AZURE_TENANT_ID is not set")
            .stderr_has("no credential is set");
    }
    assert!(!w.path().join("st").exists(), "undo locked nothing");
}

#[test]
fn a_broken_profile_exits_2_before_the_ledger_is_touched() {
    let w = accounts_job();
    w.write(
        "dvload.toml",
        "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\n",
    );
    w.dvload_env(&["run", "m.toml", "--profile", "p"], NO_ENV)
        .expect_code(2)
        .stderr_has("client_id in profile 'p'")
        .stderr_has("no credential is set");
    assert!(!w.path().join(".dvload").exists());
}

// ---------------------------------------------------------------------------------------------
// Secrets pasted into the wrong key or into a URL are never printed.

#[test]
fn a_secret_pasted_into_a_profiles_file_or_variable_key_is_not_printed() {
    let w = accounts_job();
    let base = "url = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";
    w.write(
        "dvload.toml",
        format!(
            "[profiles.file]\n{base}client_secret_file = \"Q8~S3CR3T.abc-def\"\n\n\
             [profiles.env]\n{base}client_secret_env = \"S3CR3Tabcdef\"\n\n\
             [profiles.pfxenv]\n{base}certificate_path = \"c.pfx\"\ncertificate_password_env = \"S3CR3Tabc\"\n\n\
             [profiles.pfxfile]\n{base}certificate_path = \"c.pfx\"\ncertificate_password_file = \"S3CR3T~abc\"\n"
        ),
    );
    for (profile, key) in [
        ("file", "client_secret_file"),
        ("env", "client_secret_env"),
        ("pfxenv", "certificate_password_env"),
        ("pfxfile", "certificate_password_file"),
    ] {
        for command in ["run", "whoami"] {
            let mut args = vec![command, "--profile", profile];
            if command == "run" {
                args.push("m.toml");
            }
            let out = w.dvload_env(&args, NO_ENV);
            out.expect_code(2).stderr_has(key);
            assert!(
                !out.stderr.contains("S3CR3T") && !out.stdout.contains("S3CR3T"),
                "{profile} {command}: {out:?}"
            );
        }
    }
}

#[test]
fn a_query_or_user_info_in_dataverse_url_is_not_printed() {
    let w = accounts_job();
    for url in [
        "https://contoso.crm.dynamics.com/?sig=S3CR3T",
        "https://me:S3CR3T@contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com/#S3CR3T",
        "Q8~S3CR3T.abc",
    ] {
        let out = w.dvload_env(
            &["whoami"],
            &[("DATAVERSE_URL", url), ("DATAVERSE_ACCESS_TOKEN", "t")],
        );
        out.expect_code(2).stderr_has("DATAVERSE_URL is not usable");
        assert!(!out.stderr.contains("S3CR3T"), "{url}: {}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// A ready token that Dataverse refuses is blamed on the token, not on an app registration.

#[test]
fn an_expired_access_token_says_to_get_a_new_one_not_to_check_the_tenant() {
    let mut config = Config::default();
    config.tokens.lifetime_secs = 0;
    let emu = Emulator::start(config);
    let env = vec![
        ("DATAVERSE_URL", emu.url()),
        ("DATAVERSE_ACCESS_TOKEN", emu.token()),
    ];
    let out = Workdir::new().dvload_env(&["whoami"], &env);
    out.expect_code(3)
        .stderr_has("answered 401")
        .stderr_has("Dataverse refused the token given in DATAVERSE_ACCESS_TOKEN")
        .stderr_has("has expired or was issued for another environment")
        .stderr_has("get a new one");
    assert!(!out.stderr.contains("AZURE_TENANT_ID"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("trying once with a new one"),
        "a ready token is never refreshed: {}",
        out.stderr
    );
    let w = accounts_job();
    w.dvload_env(&["run", "m.toml"], &env)
        .expect_code(3)
        .stderr_has("Dataverse refused the token given in DATAVERSE_ACCESS_TOKEN");
}

// ---------------------------------------------------------------------------------------------
// Logs in a file (cron, CI) are plain text.

#[test]
fn log_lines_written_to_a_file_carry_no_colour_codes() {
    let w = accounts_job();
    let log = std::fs::File::create(w.path().join("log.txt")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_dvload"))
        .args(["--log-level", "debug", "run", "m.toml", "--emulator"])
        .args(["--no-ledger", "--rejects", "rejects.csv"])
        .current_dir(w.path())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .unwrap();
    let text = w.read("log.txt");
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("DEBUG"), "debug lines were logged: {text}");
    assert!(
        !text.contains('\x1b'),
        "no terminal codes in a file: {text:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A closed stdout (`dvload runs | head -1`) ends quietly.

/// Runs `dvload ARGS` in `w` with stdout a pipe whose reading end is already closed.
fn with_stdout_closed(w: &Workdir, args: &[&str]) -> (i32, String) {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills in two new descriptors, which are owned from here on.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_dvload"))
        .args(args)
        .current_dir(w.path())
        .env_remove("RUST_LOG")
        .env_remove("DATAVERSE_URL")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_ends_quietly_when_its_stdout_is_closed() {
    let w = accounts_job();
    w.dvload(&["run", "m.toml", "--emulator"]).expect_code(0);
    for args in [
        &["whoami", "--emulator"][..],
        &["runs"],
        &["runs", "show", "1"],
        &["validate", "m.toml"],
        &["run", "m.toml", "--dry-run"],
        &["run", "m.toml", "--emulator"],
    ] {
        let (code, stderr) = with_stdout_closed(&w, args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(code, 0, "{args:?} ends with its own exit code: {stderr}");
    }
    // The run with its stdout closed went on to its end: the ledger has it, finished.
    let runs = w.dvload(&["runs"]);
    let second = runs
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("2 "));
    assert!(
        second.is_some_and(|l| l.contains("exit 0")),
        "{}",
        runs.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// An OS error is printed once.

#[test]
fn an_os_error_is_printed_once() {
    let w = accounts_job();
    std::fs::create_dir(w.path().join("somedir")).unwrap();
    for args in [
        &["validate", "m.toml", "--source", "somedir/"][..],
        &["run", "m.toml", "--source", "somedir/", "--dry-run"],
        &["run", "m.toml", "--source", "somedir/", "--emulator"],
        &["whoami", "--profile", "p", "--config", "somedir"],
    ] {
        let out = w.dvload(args);
        out.expect_code(2)
            .stderr_has("Is a directory (os error 21)");
        assert_eq!(
            out.stderr.matches("os error 21").count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// `dvload runs` tells a run going on now from one that was killed.

#[test]
fn runs_shows_a_run_whose_lock_is_held_as_running_and_a_killed_one_as_not_finished() {
    let mut config = Config::default();
    // Every Web API request stalls: the run is recorded, then waits on its first WhoAmI.
    config.faults.latency_ms = 120_000;
    let emu = Emulator::start(config);
    let w = accounts_job();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dvload"))
        .args(["run", "m.toml"])
        .current_dir(w.path())
        .env_remove("RUST_LOG")
        .envs(emu.env())
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let recorded = || {
        rusqlite::Connection::open(w.path().join(".dvload/ledger.sqlite"))
            .and_then(|c| c.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n > 0)
    };
    while !recorded() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(std::time::Instant::now() < deadline, "no run recorded");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let list = w.dvload(&["runs"]);
    list.expect_code(0);
    let row = list
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "));
    assert!(
        row.is_some_and(|l| l.contains("running")),
        "{}",
        list.stdout
    );
    w.dvload(&["runs", "show", "1"])
        .expect_code(0)
        .stdout_has("running (a live process holds the job's lock)");
    child.kill().unwrap();
    child.wait().unwrap();
    let list = w.dvload(&["runs"]);
    let row = list
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "));
    assert!(
        row.is_some_and(|l| l.contains("did not finish") && !l.contains("running")),
        "{}",
        list.stdout
    );
    w.dvload(&["runs", "show", "1"])
        .expect_code(0)
        .stdout_has("did not finish (killed)");
}

// ---------------------------------------------------------------------------------------------
// `--bypass-logic` takes its value only after `=`: the next word is the mapping.

/// The distinct `MSCRM.BypassBusinessLogicExecution` values of the batches in `dir`.
fn bypass_headers(w: &Workdir, dir: &str) -> Vec<String> {
    let mut values: Vec<String> = std::fs::read_dir(w.path().join(dir))
        .unwrap()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            text.lines()
                .filter_map(|l| l.strip_prefix("MSCRM.BypassBusinessLogicExecution: "))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    values.sort();
    values.dedup();
    values
}

#[test]
fn bypass_logic_takes_its_value_only_after_an_equals_sign() {
    let w = accounts_job();
    w.dvload(&[
        "run",
        "--dry-run",
        "--bypass-logic",
        "m.toml",
        "--emit-batches",
        "both",
    ])
    .expect_code(0)
    .stdout_has("read 2");
    assert_eq!(bypass_headers(&w, "both"), ["CustomSync,CustomAsync"]);
    w.dvload(&[
        "run",
        "m.toml",
        "--dry-run",
        "--bypass-logic=CustomSync",
        "--emit-batches",
        "sync",
    ])
    .expect_code(0);
    assert_eq!(bypass_headers(&w, "sync"), ["CustomSync"]);
    w.dvload(&["run", "--dry-run", "--bypass-logic=m.toml", "m.toml"])
        .expect_code(2)
        .stderr_has("possible values: CustomSync, CustomAsync, CustomSync,CustomAsync");
    w.dvload(&["run", "--help"])
        .expect_code(0)
        .stdout_has("--bypass-logic[=<WHAT>]");
}

#[test]
fn completions_and_the_manual_come_from_the_parser() {
    let w = Workdir::new();
    for (shell, marker) in [
        ("bash", "_dvload()"),
        ("zsh", "#compdef dvload"),
        ("fish", "complete -c dvload"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = w.dvload(&["completions", shell]);
        out.expect_code(0).stdout_has(marker);
        assert!(
            out.stdout.contains("fail-on"),
            "{shell}: the run's options are there"
        );
    }
    w.dvload(&["completions", "tcsh"])
        .expect_code(2)
        .stderr_has("[possible values: bash, zsh, fish, powershell]");
    let man = w.dvload(&["man"]);
    man.expect_code(0)
        .stdout_has(".TH dvload 1")
        .stdout_has(".TH dvload-run 1")
        .stdout_has(".TH dvload-init 1");
    // Every flag with an environment variable says so.
    w.dvload(&["run", "--help"])
        .expect_code(0)
        .stdout_has("[env: DVLOAD_PROFILE=]")
        .stdout_has("[env: DVLOAD_FAIL_ON=]");
}

#[test]
fn the_profile_may_come_from_the_environment_and_the_users_config_folder() {
    let w = Workdir::new();
    let xdg = w.path().join("xdg");
    std::fs::create_dir_all(xdg.join("dvload")).unwrap();
    std::fs::write(
        xdg.join("dvload/dvload.toml"),
        "[profiles.nightly]\nurl = \"https://contoso.crm4.dynamics.com\"\ntenant_id = \"11111111-1111-1111-1111-111111111111\"\n\
         client_id = \"22222222-2222-2222-2222-222222222222\"\nclient_secret_env = \"NIGHTLY_SECRET\"\n",
    )
    .unwrap();
    let xdg = xdg.to_str().unwrap();
    // DVLOAD_PROFILE names a profile of the user's file (no ./dvload.toml here): it is read, and
    // its missing secret is the error, naming that file.
    w.dvload_env(
        &["whoami"],
        &[("DVLOAD_PROFILE", "nightly"), ("XDG_CONFIG_HOME", xdg)],
    )
    .expect_code(2)
    .stderr_has("client_secret_env in profile 'nightly'")
    .stderr_has("xdg/dvload/dvload.toml");
    // A profile that is not there is named with the file looked in.
    w.dvload_env(
        &["whoami"],
        &[("DVLOAD_PROFILE", "prod"), ("XDG_CONFIG_HOME", xdg)],
    )
    .expect_code(2)
    .stderr_has("profile 'prod' is not in");
    // --emulator wins over a profile in the environment.
    w.dvload_env(&["whoami", "--emulator"], &[("DVLOAD_PROFILE", "prod")])
        .expect_code(0);
}
