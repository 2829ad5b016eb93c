//! Tests of the connection settings: environment variables and profiles.

use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

const URL: (&str, &str) = ("DATAVERSE_URL", "https://contoso.crm4.dynamics.com");
const TENANT: (&str, &str) = ("AZURE_TENANT_ID", "22222222-2222-2222-2222-222222222222");
const CLIENT: (&str, &str) = ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111");
const SECRET: (&str, &str) = ("AZURE_CLIENT_SECRET", "abc~SECRETVALUE.123");

fn from_env(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::from_env(&env_of(pairs))
}

fn err(pairs: &[(&str, &str)]) -> String {
    from_env(pairs).unwrap_err().to_string()
}

#[test]
fn env_client_secret() {
    let s = from_env(&[URL, TENANT, CLIENT, SECRET]).unwrap();
    assert_eq!(s.url.as_str(), "https://contoso.crm4.dynamics.com");
    assert_eq!(s.url.scope(), "https://contoso.crm4.dynamics.com/.default");
    assert_eq!(
        s.url.api_base(),
        "https://contoso.crm4.dynamics.com/api/data/v9.2/"
    );
    assert_eq!(s.origin, "environment");
    let CredentialSettings::Entra(e) = &s.credential else {
        panic!("not entra")
    };
    assert_eq!(e.tenant_id, TENANT.1);
    assert_eq!(e.client_id, CLIENT.1);
    assert_eq!(
        e.authority_host.as_str(),
        "https://login.microsoftonline.com"
    );
    assert_eq!(e.token_endpoint, TokenEndpoint::V2);
    assert_eq!(
        e.token_url(),
        "https://login.microsoftonline.com/22222222-2222-2222-2222-222222222222/oauth2/v2.0/token"
    );
    let ClientCredential::Secret(secret) = &e.secret else {
        panic!("not a secret")
    };
    assert_eq!(secret.expose(), SECRET.1);
}

#[test]
fn env_certificate_authority_and_v1() {
    let s = from_env(&[
        URL,
        TENANT,
        CLIENT,
        ("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/dvload/app.pfx"),
        ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-pass"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
        ("DVLOAD_TOKEN_ENDPOINT", "v1"),
        ("DVLOAD_CA_CERT", "/etc/ssl/corp.pem"),
    ])
    .unwrap();
    let CredentialSettings::Entra(e) = &s.credential else {
        panic!()
    };
    let ClientCredential::Certificate { path, password } = &e.secret else {
        panic!()
    };
    assert_eq!(path, Path::new("/etc/dvload/app.pfx"));
    assert_eq!(password.as_ref().unwrap().expose(), "pfx-pass");
    assert_eq!(
        e.token_url(),
        "https://login.microsoftonline.us/22222222-2222-2222-2222-222222222222/oauth2/token"
    );
    assert_eq!(s.ca_cert.as_deref(), Some(Path::new("/etc/ssl/corp.pem")));
}

#[test]
fn env_access_token_needs_no_app() {
    let s = from_env(&[URL, ("DATAVERSE_ACCESS_TOKEN", "eyJ.ready.token\n")]).unwrap();
    let CredentialSettings::AccessToken(t) = &s.credential else {
        panic!()
    };
    assert_eq!(t.expose(), "eyJ.ready.token");
}

#[test]
fn env_missing_settings_name_themselves() {
    assert_eq!(
        err(&[TENANT, CLIENT, SECRET]),
        "DATAVERSE_URL is not set: set it to the environment URL, e.g. export \
         DATAVERSE_URL=https://contoso.crm4.dynamics.com (Power Platform admin center > Environments > \
         your environment > Environment URL)"
    );
    assert_eq!(
        err(&[URL, CLIENT, SECRET]),
        format!("AZURE_TENANT_ID is not set: {TENANT_HINT}")
    );
    assert_eq!(
        err(&[URL, TENANT, SECRET]),
        format!("AZURE_CLIENT_ID is not set: {CLIENT_HINT}")
    );
    assert_eq!(
        err(&[URL, TENANT, CLIENT]),
        "no credential is set: set AZURE_CLIENT_SECRET to the client secret's value, or \
         AZURE_CLIENT_CERTIFICATE_PATH to a PEM or PFX file holding the certificate and its private key \
         (or DATAVERSE_ACCESS_TOKEN to a ready bearer token)"
    );
    // An empty variable counts as unset.
    assert!(
        err(&[URL, ("AZURE_TENANT_ID", " "), CLIENT, SECRET])
            .starts_with("AZURE_TENANT_ID is not set")
    );
    assert!(matches!(
        from_env(&[URL, TENANT, CLIENT]).unwrap_err(),
        SettingsError::NoCredential { .. }
    ));
}

#[test]
fn env_invalid_values() {
    assert_eq!(
        err(&[
            URL,
            TENANT,
            CLIENT,
            SECRET,
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/x.pem")
        ]),
        "both AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are set: keep only the one you mean to use"
    );
    assert_eq!(
        err(&[URL, ("AZURE_TENANT_ID", "common"), CLIENT, SECRET]),
        "AZURE_TENANT_ID is not usable: 'common' is not a tenant: the client credentials grant needs your \
         own tenant's ID or domain (Entra refuses /common for applications)"
    );
    assert_eq!(
        err(&[URL, ("AZURE_TENANT_ID", "contoso/evil"), CLIENT, SECRET]),
        "AZURE_TENANT_ID is not usable: the value has characters no tenant ID or domain has \
         (expected e.g. 22222222-2222-2222-2222-222222222222 or contoso.onmicrosoft.com)"
    );
    assert_eq!(
        err(&[URL, TENANT, CLIENT, SECRET, ("DVLOAD_TOKEN_ENDPOINT", "v3")]),
        "DVLOAD_TOKEN_ENDPOINT is not usable: 'v3' is neither 'v2' (recommended) nor 'v1' (legacy)"
    );
    assert_eq!(
        err(&[
            URL,
            TENANT,
            CLIENT,
            SECRET,
            ("AZURE_AUTHORITY_HOST", "http://login.example.com")
        ]),
        "AZURE_AUTHORITY_HOST is not usable: 'http://login.example.com/' uses http; use https (plain http \
         is allowed only for loopback hosts such as 127.0.0.1, localhost or [::1], e.g. the emulator)"
    );
}

fn url_err(v: &str) -> String {
    err(&[("DATAVERSE_URL", v), TENANT, CLIENT, SECRET])
}

fn url_ok(v: &str) -> String {
    from_env(&[("DATAVERSE_URL", v), TENANT, CLIENT, SECRET])
        .unwrap()
        .url
        .as_str()
        .to_string()
}

#[test]
fn dataverse_url_normalised() {
    for v in [
        "https://contoso.crm4.dynamics.com",
        "https://contoso.crm4.dynamics.com/",
        "https://contoso.crm4.dynamics.com/api/data/v9.2",
        "https://contoso.crm4.dynamics.com/api/data/v9.2/",
        "  https://CONTOSO.crm4.dynamics.com:443/API/data/v9.2/ ",
    ] {
        assert_eq!(url_ok(v), "https://contoso.crm4.dynamics.com", "{v}");
    }
    assert_eq!(url_ok("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    assert_eq!(url_ok("http://127.1.2.3:9"), "http://127.1.2.3:9");
    assert_eq!(
        url_ok("http://localhost:3000/api/data/v9.2"),
        "http://localhost:3000"
    );
    assert_eq!(url_ok("http://LOCALHOST"), "http://localhost");
    assert_eq!(url_ok("http://[::1]:8080"), "http://[::1]:8080");
    assert_eq!(url_ok("https://127.0.0.1:8443"), "https://127.0.0.1:8443");
}

#[test]
fn dataverse_url_refused() {
    assert_eq!(
        url_err("http://contoso.crm4.dynamics.com"),
        "DATAVERSE_URL is not usable: 'http://contoso.crm4.dynamics.com/' uses http; use https (plain http \
         is allowed only for loopback hosts such as 127.0.0.1, localhost or [::1], e.g. the emulator)"
    );
    for v in [
        "http://10.0.0.1:8080",
        "http://192.168.1.5",
        "http://[::2]",
        "http://localhost.example.com",
    ] {
        assert!(url_err(v).contains("uses http; use https"), "{v}");
    }
    assert_eq!(
        url_err("contoso.crm4.dynamics.com"),
        "DATAVERSE_URL is not usable: 'contoso.crm4.dynamics.com' is not a URL (relative URL without a \
         base); expected an environment URL such as https://contoso.crm4.dynamics.com"
    );
    assert_eq!(
        url_err("ftp://contoso.crm4.dynamics.com"),
        "DATAVERSE_URL is not usable: 'ftp://contoso.crm4.dynamics.com/' uses 'ftp'; expected an \
         environment URL such as https://contoso.crm4.dynamics.com"
    );
    assert_eq!(
        url_err("https://contoso.crm4.dynamics.com/api/data/v9.1/"),
        "DATAVERSE_URL is not usable: 'https://contoso.crm4.dynamics.com/api/data/v9.1/' points at another \
         Web API version; dvload speaks /api/data/v9.2: give the environment URL alone, e.g. \
         https://contoso.crm4.dynamics.com"
    );
    assert_eq!(
        url_err("https://contoso.crm.dynamics.com/?x=1"),
        "DATAVERSE_URL is not usable: 'https://contoso.crm.dynamics.com/' has a query (?...) or \
         fragment (#...), not shown here as it may hold a secret; expected an environment URL such as \
         https://contoso.crm4.dynamics.com"
    );
    let e = url_err("https://me:hunter2@contoso.crm.dynamics.com");
    assert!(e.contains("has a user name or password"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

const PROFILE: &str = r#"
[profiles.prod]
url = "https://contoso.crm4.dynamics.com/"
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret_env = "PROD_SECRET"

[profiles.cert]
url = "https://contoso-test.crm4.dynamics.com"
tenant_id = "22222222-2222-2222-2222-222222222222"
client_id = "33333333-3333-3333-3333-333333333333"
certificate_path = "certs/app.pfx"
certificate_password_env = "CERT_PASS"
authority_host = "https://login.partner.microsoftonline.cn"
token_endpoint = "v1"
ca_cert = "corp-root.pem"

[profiles.pipeline]
url = "http://127.0.0.1:8080"
access_token_env = "PIPELINE_TOKEN"

[run]
other = "tables are left to others"
"#;

fn profile(text: &str, name: &str, pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::from_profile_str(
        text,
        Path::new("/etc/dvload/dvload.toml"),
        name,
        &env_of(pairs),
    )
}

#[test]
fn profile_secret_from_env() {
    let s = profile(PROFILE, "prod", &[("PROD_SECRET", "s3cr3t~value"), SECRET]).unwrap();
    assert_eq!(s.url.as_str(), "https://contoso.crm4.dynamics.com");
    assert_eq!(s.origin, "profile 'prod' in /etc/dvload/dvload.toml");
    let CredentialSettings::Entra(e) = &s.credential else {
        panic!()
    };
    let ClientCredential::Secret(secret) = &e.secret else {
        panic!()
    };
    assert_eq!(secret.expose(), "s3cr3t~value");
    assert_eq!(e.tenant_id, "contoso.onmicrosoft.com");
}

#[test]
fn profile_certificate_with_relative_paths() {
    let s = profile(PROFILE, "cert", &[("CERT_PASS", "pw")]).unwrap();
    let CredentialSettings::Entra(e) = &s.credential else {
        panic!()
    };
    let ClientCredential::Certificate { path, password } = &e.secret else {
        panic!()
    };
    assert_eq!(path, Path::new("/etc/dvload/certs/app.pfx"));
    assert_eq!(password.as_ref().unwrap().expose(), "pw");
    assert_eq!(e.token_endpoint, TokenEndpoint::V1);
    assert_eq!(
        e.token_url(),
        "https://login.partner.microsoftonline.cn/22222222-2222-2222-2222-222222222222/oauth2/token"
    );
    assert_eq!(
        s.ca_cert.as_deref(),
        Some(Path::new("/etc/dvload/corp-root.pem"))
    );
}

#[test]
fn profile_access_token() {
    let s = profile(PROFILE, "pipeline", &[("PIPELINE_TOKEN", "tok")]).unwrap();
    let CredentialSettings::AccessToken(t) = &s.credential else {
        panic!()
    };
    assert_eq!(t.expose(), "tok");
    assert_eq!(
        profile(PROFILE, "pipeline", &[]).unwrap_err().to_string(),
        "the environment variable named by access_token_env in profile 'pipeline' \
         (/etc/dvload/dvload.toml) is not set: export it with the secret's value before running dvload \
         (its name is not printed, in case the secret itself was written in its place)"
    );
}

#[test]
fn profile_secret_env_missing() {
    assert_eq!(
        profile(PROFILE, "prod", &[]).unwrap_err().to_string(),
        "the environment variable named by client_secret_env in profile 'prod' \
         (/etc/dvload/dvload.toml) is not set: export it with the secret's value before running dvload \
         (its name is not printed, in case the secret itself was written in its place)"
    );
}

#[test]
fn profile_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "file~secret\n").unwrap();
    let text = r#"[profiles.p]
url = "https://x.crm.dynamics.com"
tenant_id = "t.onmicrosoft.com"
client_id = "c"
client_secret_file = "secret.txt"
"#;
    let path = dir.path().join("dvload.toml");
    std::fs::write(&path, text).unwrap();
    let s = Settings::resolve(
        &SettingsSource {
            profile: Some("p".into()),
            config: Some(path.clone()),
        },
        &env_of(&[]),
    )
    .unwrap();
    let CredentialSettings::Entra(e) = &s.credential else {
        panic!()
    };
    let ClientCredential::Secret(secret) = &e.secret else {
        panic!()
    };
    assert_eq!(secret.expose(), "file~secret");

    std::fs::write(dir.path().join("secret.txt"), "\n").unwrap();
    let e = Settings::from_profile_file(&path, "p", &env_of(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "client_secret_file in profile 'p' ({}) is not usable: the file it names is empty; \
             write the secret in it",
            path.display(),
        )
    );
    std::fs::remove_file(dir.path().join("secret.txt")).unwrap();
    let e = Settings::from_profile_file(&path, "p", &env_of(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read the file named by client_secret_file in profile 'p'"),
        "{e}"
    );
}

#[test]
fn inline_secret_refused_with_reason() {
    let text = "[profiles.prod]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"abc~INLINE\"\n";
    let e = profile(text, "prod", &[]).unwrap_err();
    assert!(
        matches!(e, SettingsError::InlineSecret { line: 5, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert_eq!(
        msg,
        "/etc/dvload/dvload.toml:5: profile 'prod' has 'client_secret' written inline; secrets never go in \
         the file (it gets copied, committed and shown on screens): put the secret in an environment \
         variable and write client_secret_env = \"ITS_NAME\", or in a file readable only by you and write \
         client_secret_file = \"/path/to/file\""
    );
    assert!(!msg.contains("abc~INLINE"));
    assert!(!format!("{e:?}").contains("abc~INLINE"));
    let text =
        "[profiles.prod]\nurl = \"https://x.crm.dynamics.com\"\ncertificate_password = \"pw\"\n";
    assert!(
        profile(text, "prod", &[])
            .unwrap_err()
            .to_string()
            .contains("'certificate_password' written inline")
    );
    let text = "[profiles.prod]\naccess_token = \"t\"\n";
    assert!(
        profile(text, "prod", &[])
            .unwrap_err()
            .to_string()
            .contains("'access_token' written inline")
    );
}

#[test]
fn secret_in_env_key_not_echoed() {
    let text = "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_env = \"abc~Oops.This-is-the-secret\"\n";
    let e = profile(text, "p", &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "client_secret_env in profile 'p' (/etc/dvload/dvload.toml) is not usable: client_secret_env must \
         be the NAME of an environment variable (letters, digits and _), not the secret itself"
    );
}

#[test]
fn a_malformed_profile_file_never_quotes_its_lines() {
    // The bug this guards against: the TOML parser's message quotes the offending line,
    // which printed a secret pasted without quotes (or under a misspelt key).
    for text in [
        "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\nclient_secret_env = S3CR3T~abc\n",
        "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\nclientsecret = \"S3CR3T~abc\"\n",
    ] {
        let e = profile(text, "p", &[]).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("S3CR3T"), "{msg}");
        assert!(!format!("{e:?}").contains("S3CR3T"), "{e:?}");
        assert!(
            msg.starts_with("/etc/dvload/dvload.toml: line 3, column "),
            "{msg}"
        );
    }
}

#[test]
fn profile_errors() {
    assert_eq!(
        profile(PROFILE, "staging", &[]).unwrap_err().to_string(),
        "profile 'staging' is not in /etc/dvload/dvload.toml (it has cert, pipeline, prod)"
    );
    assert_eq!(
        profile("[profile.prod]\nurl = \"x\"\n", "prod", &[])
            .unwrap_err()
            .to_string(),
        "profile 'prod' is not in /etc/dvload/dvload.toml (it has no [profiles.NAME] tables)"
    );
    let e = profile(
        "[profiles.prod]\nurl = \"https://x.crm.dynamics.com\"\ntenant = \"t\"\n",
        "prod",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/dvload/dvload.toml: line 3, column 1: unknown field `tenant`"),
        "{e}"
    );
    assert!(e.contains("unknown field `tenant`"), "{e}");
    assert_eq!(
        profile(
            "[profiles.p]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_env = \"A\"\n",
            "p",
            &[("A", "x")]
        )
        .unwrap_err()
        .to_string(),
        "url in profile 'p' (/etc/dvload/dvload.toml) is not set: add url = \
         \"https://contoso.crm4.dynamics.com\" (the environment URL)"
    );
    assert_eq!(
        profile(
            "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\nclient_id = \"c\"\nclient_secret_env = \"A\"\n",
            "p",
            &[("A", "x")]
        )
        .unwrap_err()
        .to_string(),
        format!(
            "tenant_id in profile 'p' (/etc/dvload/dvload.toml) is not set: {}",
            TENANT_HINT.replacen("set it", "set tenant_id", 1)
        )
    );
    assert_eq!(
        profile(
            "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n",
            "p",
            &[]
        )
        .unwrap_err()
        .to_string(),
        "no credential is set: profile 'p' in /etc/dvload/dvload.toml needs one of client_secret_env = \
         \"VARIABLE_NAME\", client_secret_file = \"/path/to/secret\", certificate_path = \"cert.pfx\" or \
         access_token_env = \"VARIABLE_NAME\""
    );
    assert_eq!(
        profile(
            "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n\
             client_secret_env = \"A\"\ncertificate_path = \"c.pem\"\n",
            "p",
            &[("A", "x")]
        )
        .unwrap_err()
        .to_string(),
        "both client_secret_env in profile 'p' (/etc/dvload/dvload.toml) and certificate_path are set: keep \
         only the one you mean to use"
    );
    assert_eq!(
        profile(
            "[profiles.p]\nurl = \"http://contoso.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n\
             client_secret_env = \"A\"\n",
            "p",
            &[("A", "x")]
        )
        .unwrap_err()
        .to_string(),
        "url in profile 'p' (/etc/dvload/dvload.toml) is not usable: 'http://contoso.crm.dynamics.com/' uses \
         http; use https (plain http is allowed only for loopback hosts such as 127.0.0.1, localhost or \
         [::1], e.g. the emulator)"
    );
}

#[test]
fn resolve_without_profile_reads_env_and_missing_config_file_is_named() {
    let s = Settings::resolve(
        &SettingsSource::default(),
        &env_of(&[URL, TENANT, CLIENT, SECRET]),
    )
    .unwrap();
    assert_eq!(s.origin, "environment");
    let e = Settings::resolve(
        &SettingsSource {
            profile: Some("p".into()),
            config: Some("/nonexistent/dvload.toml".into()),
        },
        &env_of(&[]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "cannot read the profile file (--config, DVLOAD_CONFIG; else ./dvload.toml or ~/.config/dvload/dvload.toml) '/nonexistent/dvload.toml'"
    );
}

#[test]
fn the_users_config_file_is_found_under_xdg_config_home_or_home() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("xdg/dvload/dvload.toml");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, "").unwrap();
    let xdg = dir.path().join("xdg");
    let xdg = xdg.to_str().unwrap();
    // The tests run in the crate's folder, which has no dvload.toml.
    assert!(!std::path::Path::new(super::DEFAULT_CONFIG_FILE).exists());
    assert_eq!(
        super::default_config_file(&env_of(&[("XDG_CONFIG_HOME", xdg)])),
        user
    );
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".config/dvload")).unwrap();
    std::fs::write(home.join(".config/dvload/dvload.toml"), "").unwrap();
    assert_eq!(
        super::default_config_file(&env_of(&[("HOME", home.to_str().unwrap())])),
        home.join(".config/dvload/dvload.toml")
    );
    // A relative XDG_CONFIG_HOME is ignored (the specification says so); nothing found: ./dvload.toml.
    assert_eq!(
        super::default_config_file(&env_of(&[("XDG_CONFIG_HOME", "rel")])),
        std::path::PathBuf::from("dvload.toml")
    );
}

#[test]
fn every_missing_environment_variable_is_listed_at_once() {
    let e = from_env(&[]).unwrap_err();
    let SettingsError::Several { problems } = &e else {
        panic!("not several: {e:?}")
    };
    assert_eq!(problems.len(), 4, "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("the connection settings have 4 problems:\n  DATAVERSE_URL is not set: "),
        "{msg}"
    );
    for line in [
        "\n  AZURE_TENANT_ID is not set: ",
        "\n  AZURE_CLIENT_ID is not set: ",
        "\n  no credential is set: set AZURE_CLIENT_SECRET",
    ] {
        assert!(msg.contains(line), "{line:?} in {msg}");
    }
    // Missing and unusable together; a ready token needs only the URL.
    let msg = err(&[("DATAVERSE_URL", "http://x.crm.dynamics.com"), CLIENT]);
    assert!(
        msg.starts_with("the connection settings have 3 problems:"),
        "{msg}"
    );
    assert!(msg.contains("\n  DATAVERSE_URL is not usable: "), "{msg}");
    assert!(
        err(&[("DATAVERSE_ACCESS_TOKEN", "t")]).starts_with("DATAVERSE_URL is not set: "),
        "one problem is reported alone"
    );
}

#[test]
fn every_problem_of_a_profile_is_listed_at_once() {
    let text = "[profiles.p]\nclient_secret_env = \"A\"\ntoken_endpoint = \"v9\"\n";
    let msg = profile(text, "p", &[]).unwrap_err().to_string();
    assert!(
        msg.starts_with("the connection settings have 5 problems:"),
        "{msg}"
    );
    for key in [
        "url",
        "tenant_id",
        "client_id",
        "the environment variable named by client_secret_env",
        "token_endpoint",
    ] {
        assert!(
            msg.contains(&format!("\n  {key} in profile 'p'")),
            "{key} in {msg}"
        );
    }
    // An unreadable secret file keeps its reason in the list.
    let text = "[profiles.p]\nclient_secret_file = \"/nonexistent/secret\"\n";
    let msg = profile(text, "p", &[]).unwrap_err().to_string();
    assert!(
        msg.contains("No such file or directory (os error 2)"),
        "{msg}"
    );
}

#[test]
fn a_secret_written_in_a_key_that_names_it_is_never_printed() {
    let base = "[profiles.p]\nurl = \"https://x.crm.dynamics.com\"\ntenant_id = \"t\"\nclient_id = \"c\"\n";
    // Each would print the value if quoted: a file path, or a name valid as a variable's.
    for tail in [
        "client_secret_file = \"abc~S3CR3T.value\"\n",
        "client_secret_file = \"S3CR3Tvalue\"\n",
        "client_secret_env = \"S3CR3Tvalue\"\n",
        "access_token_env = \"S3CR3Tvalue\"\n",
        "certificate_path = \"c.pfx\"\ncertificate_password_env = \"S3CR3Tvalue\"\n",
        "certificate_password_env = \"S3CR3T~value\"\ncertificate_path = \"c.pfx\"\n",
        "certificate_path = \"c.pfx\"\ncertificate_password_file = \"S3CR3T~value\"\n",
    ] {
        let e = profile(&format!("{base}{tail}"), "p", &[]).unwrap_err();
        let full = format!("{e} {e:?} {}", list(std::slice::from_ref(&e)));
        assert!(!full.contains("S3CR3T"), "{tail}: {full}");
        let key = tail
            .split_whitespace()
            .find(|k| k.contains("_env") || k.contains("_file"))
            .unwrap();
        assert!(e.to_string().contains(key), "{tail}: names {key}: {e}");
    }
    // A secret set in AZURE_TENANT_ID by mistake.
    let e = err(&[URL, ("AZURE_TENANT_ID", "abc~S3CR3T.value"), CLIENT, SECRET]);
    assert!(!e.contains("S3CR3T"), "{e}");
    let e = err(&[
        URL,
        TENANT,
        CLIENT,
        SECRET,
        ("DVLOAD_TOKEN_ENDPOINT", "abc~S3CR3T.value"),
    ]);
    assert!(
        !e.contains("S3CR3T") && e.contains("DVLOAD_TOKEN_ENDPOINT"),
        "{e}"
    );
}

#[test]
fn a_url_never_prints_its_query_fragment_or_user_info() {
    for v in [
        "https://contoso.crm.dynamics.com/?sig=S3CR3T",
        "https://contoso.crm.dynamics.com/api/data/v9.2?code=S3CR3T",
        "https://contoso.crm.dynamics.com/#S3CR3T",
        "https://me:S3CR3T@contoso.crm.dynamics.com/?x=S3CR3T",
        "http://contoso.crm.dynamics.com/?sig=S3CR3T",
        "ftp://contoso.crm.dynamics.com/?sig=S3CR3T",
        "https://me:S3CR3T@[bad/?x=S3CR3T",
        "https://contoso.crm.dynamics.com:99999/?x=S3CR3T",
        "abc~S3CR3T.value",
        "S3CR3T",
    ] {
        let e = url_err(v);
        assert!(!e.contains("S3CR3T"), "{v}: {e}");
        assert!(e.starts_with("DATAVERSE_URL is not usable: "), "{v}: {e}");
        let e = err(&[URL, TENANT, CLIENT, SECRET, ("AZURE_AUTHORITY_HOST", v)]);
        assert!(!e.contains("S3CR3T"), "{v}: {e}");
    }
    // A host and its path are shown.
    assert!(
        url_err("contoso.crm4.dynamics.com").contains("'contoso.crm4.dynamics.com' is not a URL")
    );
    assert!(
        url_err("https://contoso.crm.dynamics.com/api/data/v9.1?x=S3CR3T")
            .contains("'https://contoso.crm.dynamics.com/api/data/v9.1'")
    );
}

#[test]
fn a_profile_may_say_which_rejects_fail_a_run() {
    let text = "[profiles.p]\nurl = \"https://contoso.crm4.dynamics.com\"\ntenant_id = \"contoso.onmicrosoft.com\"\n\
                client_id = \"00000000-0000-0000-0000-000000000000\"\nclient_secret_env = \"S\"\nfail_on = \"rejects>5\"\n";
    let s = profile(text, "p", &[("S", "x")]).unwrap();
    assert_eq!(
        s.fail_on,
        Some(crate::exit::FailOn::parse("rejects>5").unwrap())
    );
    let bad = text.replace("rejects>5", "sometimes");
    let e = profile(&bad, "p", &[("S", "x")]).unwrap_err().to_string();
    assert!(
        e.contains("fail_on in profile 'p'") && e.contains("'sometimes' is not a fail-on term"),
        "{e}"
    );
}
