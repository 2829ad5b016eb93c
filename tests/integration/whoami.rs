//! `dvload whoami`: the binary against an in-process emulator configured for each set-up
//! failure; each case asserts the exit code and the words that name the failing step.

use std::io::{Read as _, Write as _};

use dataverse_emulator::Config;
use dataverse_emulator::config::Right;

use crate::support::{Emulator, Workdir, accounts_mapping, repo, set_var};

fn whoami(env: &[(&str, String)], extra: &[&str]) -> crate::support::Output {
    let mut args = vec!["whoami"];
    args.extend_from_slice(extra);
    Workdir::new().dvload_env(&args, env)
}

const OTHER_GUID: &str = "99999999-9999-9999-9999-999999999999";

#[test]
fn the_built_in_emulator_shows_user_business_unit_organization_and_dop_hint() {
    let out = Workdir::new().dvload_env(&["whoami", "--emulator"], &[] as &[(&str, String)]);
    out.expect_code(0)
        .stdout_has("environment    http://127.0.0.1:")
        .stdout_has("settings from  the built-in emulator at")
        .stdout_has("user           33333333-3333-3333-3333-333333333333 (dvload, application 22222222-2222-2222-2222-222222222222)")
        .stdout_has("business unit  55555555-5555-5555-5555-555555555555 (emulator)")
        .stdout_has("organization   66666666-6666-6666-6666-666666666666")
        .stdout_has("dop hint       4 (x-ms-dop-hint");
}

#[test]
fn environment_variables_are_the_settings_source() {
    let emu = Emulator::start(Config::default());
    let out = whoami(&emu.env(), &[]);
    out.expect_code(0)
        .stdout_has(&format!("environment    {}", emu.url()))
        .stdout_has("settings from  environment")
        .stdout_has("33333333-3333-3333-3333-333333333333");
}

#[test]
fn an_unknown_tenant_names_azure_tenant_id() {
    let emu = Emulator::start(Config::default());
    let mut env = emu.env();
    set_var(&mut env, "AZURE_TENANT_ID", OTHER_GUID);
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has("Entra ID does not know the tenant")
        .stderr_has("AADSTS90002")
        .stderr_has("Check AZURE_TENANT_ID");
}

#[test]
fn an_unknown_application_names_azure_client_id() {
    let emu = Emulator::start(Config::default());
    let mut env = emu.env();
    set_var(&mut env, "AZURE_CLIENT_ID", OTHER_GUID);
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has("the application is not registered in this tenant")
        .stderr_has("AADSTS700016")
        .stderr_has("Check AZURE_CLIENT_ID");
}

#[test]
fn a_wrong_secret_says_to_use_the_secret_value() {
    let emu = Emulator::start(Config::default());
    let mut env = emu.env();
    set_var(&mut env, "AZURE_CLIENT_SECRET", "not-the-secret");
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has("the client secret was refused")
        .stderr_has("AADSTS7000215")
        .stderr_has("Use the secret's VALUE, not its Secret ID");
}

#[test]
fn an_expired_secret_says_to_create_a_new_one() {
    let mut config = Config::default();
    config.apps[0].secrets[0].expires = Some("2020-01-01T00:00:00Z".into());
    let emu = Emulator::start(config);
    whoami(&emu.env(), &[])
        .expect_code(3)
        .stderr_has("the client secret has expired")
        .stderr_has("AADSTS7000222")
        .stderr_has("Create a new one in the app registration");
}

#[test]
fn a_certificate_not_registered_on_the_app_says_to_upload_it() {
    let emu = Emulator::start(Config::default());
    let mut env = emu.env();
    env.retain(|(k, _)| *k != "AZURE_CLIENT_SECRET");
    let cert = repo().join("src/auth/testdata/cert-and-key.pem");
    set_var(
        &mut env,
        "AZURE_CLIENT_CERTIFICATE_PATH",
        cert.display().to_string(),
    );
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has("the certificate was refused")
        .stderr_has("AADSTS700027")
        .stderr_has("Upload the certificate");
}

#[test]
fn an_app_without_an_application_user_says_to_add_one() {
    let mut config = Config::default();
    config.application_users.clear();
    let emu = Emulator::start(config);
    whoami(&emu.env(), &[])
        .expect_code(3)
        .stderr_has("answered 403")
        .stderr_has("0x80072560")
        .stderr_has("no application user in this environment")
        .stderr_has("Application users, add the app");
}

#[test]
fn a_disabled_application_user_says_to_activate_it() {
    let mut config = Config::default();
    config.application_users[0].disabled = true;
    let emu = Emulator::start(config);
    whoami(&emu.env(), &[])
        .expect_code(3)
        .stderr_has("0x80040225")
        .stderr_has("the application user is disabled")
        .stderr_has("Activate it");
}

#[test]
fn a_role_missing_a_privilege_is_named_by_check() {
    let mut config = Config::default();
    for p in &mut config.roles[0].privileges {
        if p.table == "account" {
            p.rights.retain(|r| *r != Right::Create);
        }
    }
    let emu = Emulator::start(config);
    let mapping = repo().join("mappings/accounts.toml");
    whoami(&emu.env(), &["--check", &mapping.display().to_string()])
        .expect_code(3)
        .stdout_has("privileges   missing: prvCreateAccount (to create rows)")
        .stdout_has("verdict      MISSING PRIVILEGES")
        .stdout_has("Security roles");
}

#[test]
fn nothing_listening_at_the_environment_url_is_named() {
    let emu = Emulator::start(Config::default());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut env = emu.env();
    set_var(
        &mut env,
        "DATAVERSE_URL",
        format!("http://127.0.0.1:{port}"),
    );
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has(&format!(
            "nothing answers at DATAVERSE_URL http://127.0.0.1:{port}"
        ))
        .stderr_has("check DATAVERSE_URL");
}

/// A web server that is not Dataverse: every request gets a 404 page.
fn not_dataverse() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<html><body>Not Found</body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_url_that_is_not_dataverse_is_named() {
    let emu = Emulator::start(Config::default());
    let other = not_dataverse();
    let mut env = emu.env();
    set_var(&mut env, "DATAVERSE_URL", other.clone());
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has(&format!(
            "DATAVERSE_URL {other} is not a Dataverse environment"
        ))
        .stderr_has("answered HTTP 404 without Dataverse's sign-in challenge");
}

#[test]
fn a_token_for_another_environment_names_its_audience() {
    let a = Emulator::start(Config::default());
    let b = Emulator::start(Config::default());
    let env = vec![
        ("DATAVERSE_URL", b.url()),
        ("DATAVERSE_ACCESS_TOKEN", a.token()),
    ];
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has("answered 401")
        .stderr_has(&format!(
            "the token is for the environment {}, not for DATAVERSE_URL {}",
            a.url(),
            b.url()
        ))
        .stderr_has("a different environment than the token's audience");
}

#[test]
fn an_environment_of_another_tenant_names_both_tenants() {
    let a = Emulator::start(Config::default());
    let mut config = Config::default();
    config.tenants[0].id = OTHER_GUID.into();
    config.apps[0].tenant_id = OTHER_GUID.into();
    let b = Emulator::start(config);
    let mut env = a.env();
    set_var(&mut env, "DATAVERSE_URL", b.url());
    whoami(&env, &[])
        .expect_code(3)
        .stderr_has(&format!(
            "the environment {} belongs to tenant {OTHER_GUID}",
            b.url()
        ))
        .stderr_has(&format!(
            "but AZURE_TENANT_ID is {}",
            dataverse_emulator::defaults::TENANT_ID
        ))
        .stderr_has("AADSTS500011");
}

#[test]
fn check_accepts_the_bundled_mappings() {
    let root = repo();
    let m = |n: &str| root.join("mappings").join(n).display().to_string();
    let out = Workdir::new().dvload_env(
        &[
            "whoami",
            "--emulator",
            "--check",
            &m("accounts.toml"),
            &m("contacts.toml"),
            &m("leads.toml"),
        ],
        &[] as &[(&str, String)],
    );
    out.expect_code(0)
        .stdout_has("accounts.toml -> accounts (upsert)")
        .stdout_has("key          accountnumber on account: alternate key accountnumber_key (Active)")
        .stdout_has("lookup       parentcustomerid_account -> accounts (account): column parentcustomerid (Customer)")
        .stdout_has("privileges   present: prvCreateAccount (Global), prvWriteAccount (Global), prvReadAccount (Global), prvAppendAccount (Global), prvAppendToAccount (Global)")
        .stdout_has("leads.toml -> leads (create)")
        .stdout_has("verdict      ready")
        .stdout_has("not checked without writing: row-level access");
    assert!(!out.stdout.contains("UNUSABLE") && !out.stdout.contains("MISSING"));
}

#[test]
fn check_finds_unknown_tables_columns_and_keys_with_suggestions() {
    let w = Workdir::new();
    w.write(
        "set.toml",
        accounts_mapping("").replace("entity_set = \"accounts\"", "entity_set = \"acounts\""),
    );
    w.write("column.toml", accounts_mapping("telephon1 = \"Phone\"\n"));
    w.write(
        "key.toml",
        accounts_mapping("").replace("key = { accountnumber", "key = { telephone1"),
    );
    let out = w.dvload_env(
        &[
            "whoami",
            "--emulator",
            "--check",
            "set.toml",
            "column.toml",
            "key.toml",
        ],
        &[] as &[(&str, String)],
    );
    out.expect_code(2)
        .stdout_has("entity set   'acounts' not found (did you mean 'accounts'?)")
        .stdout_has("unknown: 'telephon1' (did you mean 'telephone1'?)")
        .stdout_has("account has no alternate key on (telephone1); its keys: accountnumber_key (accountnumber)")
        .stdout_has("verdict      UNUSABLE");
}

#[test]
fn help_shows_a_worked_example() {
    let out = Workdir::new().dvload_env(&["whoami", "--help"], &[] as &[(&str, String)]);
    out.expect_code(0)
        .stdout_has("dvload whoami --emulator")
        .stdout_has("--check mappings/accounts.toml")
        .stdout_has("business unit  ded5a64f")
        .stdout_has("--check <MAPPING>");
}

#[test]
fn check_reports_an_unreadable_mapping_and_a_lookup_to_an_unknown_table() {
    let w = Workdir::new();
    w.write(
        "lookup.toml",
        accounts_mapping(
            "parentaccountid = { lookup = \"acount\", key = { accountnumber = \"Company\" } }\n",
        ),
    );
    let out = w.dvload_env(
        &[
            "whoami",
            "--emulator",
            "--check",
            "missing.toml",
            "lookup.toml",
        ],
        &[] as &[(&str, String)],
    );
    out.expect_code(2)
        .stdout_has("the mapping cannot be read")
        .stdout_has(
            "lookup 'parentaccountid': unknown entity set 'acount' (did you mean 'accounts'?)",
        );
}

/// A task's privileges are the activities' (`prvCreateActivity`), as the table's metadata lists
/// them: the check asks for those, not for a `prvCreateTask` that no role can hold.
#[test]
fn check_names_privileges_as_the_table_metadata_lists_them() {
    let mut config = Config::default();
    for p in &mut config.roles[0].privileges {
        if p.table == "task" {
            p.rights.retain(|r| *r != Right::Create);
        }
    }
    let emu = Emulator::start(config);
    let dir = Workdir::new();
    let mapping = dir.write(
        "tasks.toml",
        "[source]\npath = \"tasks.csv\"\n\n[target]\nentity_set = \"tasks\"\noperation = \"create\"\n\n\
         [fields]\nsubject = \"Subject\"\n",
    );
    let out = dir.dvload_env(
        &["whoami", "--check", &mapping.display().to_string()],
        &emu.env(),
    );
    out.expect_code(3)
        .stdout_has("privileges   missing: prvCreateActivity (to create rows)");
    assert!(!out.stdout.contains("Task ("), "{}", out.stdout);
    // With the right held, the same mapping is ready.
    let emu = Emulator::start(Config::default());
    dir.dvload_env(
        &["whoami", "--check", &mapping.display().to_string()],
        &emu.env(),
    )
    .expect_code(0)
    .stdout_has("privileges   present: prvCreateActivity (Global)");
}
