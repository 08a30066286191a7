//! `pocketgate pocket-id setup`: bring Pocket ID in line with the
//! configuration through its admin API: pocketgate's OIDC client (callback
//! and logout URLs of every login domain, PKCE, the group restriction), its
//! secret, and the SCIM service provider with its token. Ask, plan (`plan`,
//! pure), print, apply; a second run finds nothing to do.

mod admin;
mod desired;
mod files;
mod plan;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, SecretPaths};

use super::{fail, SetupArgs};
use admin::{Admin, ApiError};
use desired::Choices;
use plan::{Current, Described, Desired, Plan, Step};

/// Why setup stopped, each with what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("--api-key-file {path}: {reason}; fix: create an API key in Pocket ID (Settings, Admin, API Keys) and write it to that file (chmod 600)")]
    ApiKeyFile { path: PathBuf, reason: String },
    #[error("--api-key-file {path} is empty; fix: write the API key Pocket ID showed into it")]
    ApiKeyEmpty { path: PathBuf },
    #[error("oidc.client_secret_file is not set, so setup has nowhere to write the client secret; fix: set it in the configuration (e.g. \"/run/secrets/pocketgate-client-secret\") or pass --client-secret-file PATH (or set oidc.client_auth = \"none\" for a public client)")]
    NoSecretFile,
    #[error("writing {path}: {reason}; fix: create its directory, or choose another path")]
    WriteFile { path: PathBuf, reason: String },
    #[error("the OS random source failed: {0}")]
    Random(String),
    #[error("{}", missing_groups(.0))]
    MissingGroups(Vec<String>),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("cannot start the network runtime: {0}")]
    Runtime(String),
}

fn missing_groups(names: &[String]) -> String {
    format!(
        "the policies name {} that Pocket ID does not have, so nothing was changed; fix: create {} in Pocket ID (User Groups, Add group, with exactly that name) and run setup again, or pass --no-group-restriction to let every Pocket ID user sign in and leave the groups to pocketgate's policies",
        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
        if names.len() == 1 { "it" } else { "them" }
    )
}

/// `pocketgate pocket-id setup`.
pub(super) fn setup(config_path: &Path, args: &SetupArgs) -> ExitCode {
    let loaded = match config::load_with_secret_paths(config_path) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let (rt, paths) = loaded.value;
    let choices = Choices {
        client_name: args.client_name.clone(),
        client_secret_file: args.client_secret_file.clone(),
        no_group_restriction: args.no_group_restriction,
        scim_token_file: args.scim_token_file.clone(),
        scim_endpoint: args.scim_endpoint.clone(),
        no_scim: args.no_scim,
    };
    let outcome = files::api_key(&args.api_key_file).and_then(|(key, warning)| {
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        let want = desired::desired(&rt, &paths, &choices)?;
        let admin = Admin::new(&args.url, key)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SetupError::Runtime(e.to_string()))?;
        runtime.block_on(run(&admin, &want, &rt.oidc.issuer, args.dry_run))?;
        print!("{}", config_lines(&want, &paths));
        Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ask, plan, print, and (unless `dry_run`) apply.
async fn run(admin: &Admin, want: &Desired, issuer: &str, dry_run: bool) -> Result<(), SetupError> {
    let about = admin.about().await?;
    println!(
        "Pocket ID {} at {}",
        about.version.as_deref().unwrap_or("(version not told)"),
        about.issuer
    );
    if about.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        eprintln!(
            "warning: oidc.issuer is {issuer:?} but this Pocket ID calls itself {:?}: sign-ins fail until they match (fix: set oidc.issuer to Pocket ID's APP_URL)",
            about.issuer
        );
    }
    let client = admin.client(&want.client_id).await?;
    let mut wanted_groups = want.named_groups.clone();
    if let plan::Restriction::Groups(g) = &want.restriction {
        wanted_groups.extend(g.iter().map(|g| g.name.clone()));
    }
    wanted_groups.sort();
    wanted_groups.dedup();
    let found = admin.groups(&wanted_groups).await?;
    let scim = match (&want.scim, &client) {
        (Some(_), Some(_)) => admin.scim(&want.client_id).await?,
        _ => None,
    };
    let now = Current {
        groups: found
            .iter()
            .map(|(n, (id, _))| (n.clone(), id.clone()))
            .collect(),
        friendly_names: found
            .into_iter()
            .map(|(n, (_, friendly))| (n, friendly))
            .collect(),
        secret_file: want
            .secret_file
            .as_deref()
            .is_some_and(|p| files::read_secret(p).is_some()),
        scim,
        scim_token: want
            .scim
            .as_ref()
            .and_then(|s| files::read_secret(&s.token_file)),
        client: client.as_ref().map(|c| c.now.clone()),
    };
    let plan = plan::plan(want, &now);
    for n in &plan.notes {
        println!("note: {n}");
    }
    for (name, friendly) in &plan.friendly_mismatch {
        eprintln!(
            "warning: Pocket ID's SCIM sync names group {name:?} by its friendly name {friendly:?}, which is neither {name:?} nor a name Pocket ID derives {name:?} from, so SCIM cannot take this group away from someone Pocket ID removes from it (the next refresh does) (fix: in Pocket ID, User Groups, {name}, set the friendly name to {name:?})"
        );
    }
    if !plan.missing_groups.is_empty() {
        return Err(SetupError::MissingGroups(plan.missing_groups));
    }
    if plan.is_empty() {
        println!("Pocket ID is up to date: nothing to change");
        return Ok(());
    }
    if dry_run {
        println!("plan (dry run: nothing is changed):");
        for s in &plan.steps {
            println!("  - {}", Described(s, want));
        }
        return Ok(());
    }
    println!("changes:");
    apply(admin, want, &plan, &now, client.map(|c| c.raw)).await?;
    println!("done: {} change(s) made", plan.steps.len());
    Ok(())
}

/// Make the plan's changes in order; each one printed as it is made, so a
/// failure shows what was done (a second run continues from there).
async fn apply(
    admin: &Admin,
    want: &Desired,
    plan: &Plan,
    now: &Current,
    raw: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<(), SetupError> {
    let restricted = plan.restricted;
    let mut token = now.scim_token.clone();
    for step in &plan.steps {
        match step {
            Step::CreateClient => admin.create_client(want, restricted).await?,
            Step::UpdateClient(_) => {
                admin
                    .update_client(want, raw.clone().unwrap_or_default(), restricted)
                    .await?
            }
            Step::SetGroups(groups) => {
                let ids: Vec<String> = groups.iter().map(|(_, id)| id.clone()).collect();
                admin.set_groups(&want.client_id, &ids).await?;
            }
            Step::CreateSecret { path, stale } => {
                let secret = admin.create_secret(&want.client_id).await?;
                files::write_secret(path, &secret, *stale).inspect_err(|_| {
                    eprintln!(
                        "warning: Pocket ID made a new client secret that could not be written; the next run makes another"
                    );
                })?;
            }
            Step::WriteScimToken(path) => {
                let t = files::new_token()?;
                files::write_secret(path, &t, false)?;
                token = Some(t);
            }
            Step::CreateScim | Step::UpdateScim { .. } => {
                let (Some(scim), Some(token)) = (&want.scim, &token) else {
                    continue;
                };
                let id = match step {
                    Step::UpdateScim { id, .. } => Some(id.as_str()),
                    _ => None,
                };
                admin
                    .put_scim(id, &want.client_id, &scim.endpoint, token)
                    .await?;
            }
        }
        println!("  - {}", Described(step, want));
    }
    Ok(())
}

/// The configuration lines the setup relies on, each marked when the
/// configuration already has it.
fn config_lines(want: &Desired, paths: &SecretPaths) -> String {
    use std::fmt::Write;
    let mut s = String::from("configuration pocketgate needs for this client:\n[oidc]\n");
    let _ = writeln!(s, "client_id = {:?}", want.client_id);
    match &want.secret_file {
        Some(p) => {
            let there = paths.client_secret_file.as_deref() == Some(p.as_path());
            let _ = writeln!(
                s,
                "client_secret_file = {:?}{}",
                p.display().to_string(),
                if there { "   # already set" } else { "" }
            );
        }
        None => s.push_str("client_auth = \"none\"   # already set\n"),
    }
    if let Some(scim) = &want.scim {
        let there = paths.scim_token_file.as_deref() == Some(scim.token_file.as_path());
        let _ = writeln!(
            s,
            "[scim]\ntoken_file = {:?}{}",
            scim.token_file.display().to_string(),
            if there { "   # already set" } else { "" }
        );
    }
    s
}
