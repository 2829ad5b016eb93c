//! `dvload whoami`: prove the connection set-up (settings, token, `WhoAmI`, a security role) and
//! say who dvload is in the environment; with `--check MAPPING...`, check each mapping's table,
//! columns, keys and privileges against the environment without writing anything (the check
//! `run` makes before its first write: [`super::check`]).

use std::path::PathBuf;

use serde_json::Value;

use super::connect::ConnectArgs;
use crate::environment::check::{Checker, JobCheck, get_json};
use crate::environment::connect::Connection;
use crate::exit::Exit;
use crate::mapping::MappingSpec;
use crate::writer::RetryPolicy;

/// Arguments of `dvload whoami`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload whoami --emulator\n  \
    dvload whoami --profile prod --check mappings/accounts.toml mappings/contacts.toml\n\n\
    With the environment variables set (DATAVERSE_URL, AZURE_TENANT_ID, AZURE_CLIENT_ID,\n\
    AZURE_CLIENT_SECRET), `dvload whoami` prints:\n  \
    environment    https://contoso.crm4.dynamics.com\n  \
    settings from  environment\n  \
    user           d96e9f55-f06d-e511-80d0-00155db07cb1 (dvload loader, application 2222...)\n  \
    business unit  ded5a64f-f06d-e511-80d0-00155db07cb1 (contoso)\n  \
    roles          dvload loader\n  \
    organization   4faf1f34-f06d-e511-80d0-00155db07cb1\n  \
    dop hint       4 (x-ms-dop-hint: parallel requests the server recommends)\n\n\
    Each failing step (tenant, application, secret or certificate, environment URL, application \
    user, security role: a user with none is named) is named with how to fix it. --check reads each mapping's table, columns, keys and \
    the privileges its operation needs, and writes nothing; row-level access, plug-ins, field \
    security and data values can only be proven by writing (try `dvload run --dry-run`, then a \
    small --source file).\n\n\
    Exit codes: 0 all is well, 2 a mapping is unusable (unknown table, column or key; this wins \
    over 3), 3 the set-up failed or a privilege is missing.")]
pub struct Args {
    /// Check these mappings against the environment (tables, columns, keys, privileges); writes nothing.
    #[arg(long, value_name = "MAPPING", num_args = 1..)]
    pub check: Vec<PathBuf>,
    /// Connection options.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub use crate::environment::check::NOT_CHECKED;

/// Runs `dvload whoami`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(whoami(args))
}

async fn whoami(args: Args) -> anyhow::Result<Exit> {
    let conn = crate::environment::connect::connect(
        &args.connect.options(),
        &crate::writer::RetryPolicy::default(),
    )
    .await?;
    let policy = RetryPolicy::default();
    let who = &conn.whoami;
    println!("environment    {}", conn.url);
    println!("settings from  {}", conn.origin);
    let user = get_json(
        &conn,
        &policy,
        &format!(
            "systemusers({})?$select=fullname,applicationid,isdisabled",
            who.user_id
        ),
    )
    .await;
    match &user {
        Ok(u) => {
            let name = u.get("fullname").and_then(Value::as_str).unwrap_or("");
            let app = u
                .get("applicationid")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let disabled = u.get("isdisabled").and_then(Value::as_bool) == Some(true);
            println!(
                "user           {} ({name}, application {app}{})",
                who.user_id,
                if disabled { ", DISABLED" } else { "" }
            );
        }
        Err(e) => println!("user           {} (name not available: {e})", who.user_id),
    }
    match get_json(
        &conn,
        &policy,
        &format!("businessunits({})?$select=name", who.business_unit_id),
    )
    .await
    {
        Ok(b) => println!(
            "business unit  {} ({})",
            who.business_unit_id,
            b.get("name").and_then(Value::as_str).unwrap_or("")
        ),
        Err(e) => println!(
            "business unit  {} (name not available: {e})",
            who.business_unit_id
        ),
    }
    let roles = get_json(
        &conn,
        &policy,
        &format!(
            "systemusers({})/systemuserroles_association?$select=name",
            who.user_id
        ),
    )
    .await;
    let no_role = match roles.as_ref().map(role_names) {
        Ok(names) if names.is_empty() => {
            println!(
                "roles          NONE: the application user has no security role, so it may read or write no table"
            );
            true
        }
        Ok(names) => {
            println!("roles          {}", names.join(", "));
            false
        }
        Err(e) => {
            println!("roles          not available: {e}");
            false
        }
    };
    println!("organization   {}", who.organization_id);
    match conn.dop_hint {
        Some(n) => {
            println!("dop hint       {n} (x-ms-dop-hint: parallel requests the server recommends)")
        }
        None => {
            println!("dop hint       none (the server sent no x-ms-dop-hint; dvload starts with 4)")
        }
    }
    if no_role {
        println!(
            "               give it one (Power Platform admin centre > Environments > <environment> > Settings > \
             Users + permissions > Application users > the app > Edit security roles)"
        );
    }
    let exit = if args.check.is_empty() {
        Exit::Success
    } else {
        check_all(&conn, &policy, &args.check).await
    };
    Ok(if no_role && exit == Exit::Success {
        Exit::Auth
    } else {
        exit
    })
}

/// The role names of a `systemuserroles_association` answer.
fn role_names(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .get("value")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|r| r.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn check_all(conn: &Connection, policy: &RetryPolicy, mappings: &[PathBuf]) -> Exit {
    println!();
    let mut checker = match Checker::load(conn, policy).await {
        Ok(c) => c,
        Err(e) => {
            println!("{}", Checker::load_failed(&e));
            return Exit::Auth;
        }
    };
    let mut checks = Vec::with_capacity(mappings.len());
    for path in mappings {
        let check = match MappingSpec::load(path) {
            Ok(spec) => checker.check_spec(&spec).await,
            Err(e) => JobCheck::unreadable(path, &e),
        };
        for line in check.report() {
            println!("{line}");
        }
        println!();
        checks.push(check);
    }
    println!("{NOT_CHECKED}.");
    crate::environment::check::worst(&checks)
}
