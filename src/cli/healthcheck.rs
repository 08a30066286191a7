//! `pocketgate healthcheck`: ask the running service whether it answers, for
//! a container's `HEALTHCHECK` (the image has no shell and no curl).
//!
//! It reads the same configuration as `serve` (without opening the secret
//! files: only `listen` and `metrics_listen` matter), sends `GET /healthz` to
//! `listen` over loopback and, when `metrics_listen` is set, `GET /metrics` to
//! it, each with a 2-second limit, and exits 0 when every answer is 200. A
//! wildcard address (`0.0.0.0`, `::`) is asked on its loopback (`127.0.0.1`,
//! `::1`). It does not ask `/readyz`: a provider that is down makes the service
//! not ready, not unhealthy, and restarting pocketgate would not fix it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config;

/// How long one probe may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Why the service is not healthy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unhealthy {
    /// The configuration does not load, so there is no address to ask.
    #[error("cannot read the configuration: {0}")]
    Config(String),
    /// The probe's runtime or HTTP client could not be built.
    #[error("cannot start the probe: {0}")]
    Probe(String),
    /// Nothing answered within [`TIMEOUT`].
    #[error("{url}: no answer within {} s", TIMEOUT.as_secs())]
    Timeout {
        /// The URL asked.
        url: String,
    },
    /// The connection failed (refused, reset, unreachable).
    #[error("{url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// The innermost error, e.g. `Connection refused (os error 111)`.
        reason: String,
    },
    /// The service answered with another status than 200.
    #[error("{url}: answered {status}, not 200")]
    Status {
        /// The URL asked.
        url: String,
        /// The status received.
        status: u16,
    },
}

/// `pocketgate healthcheck`: one line on stdout and exit 0 when healthy, one
/// line on stderr saying why and exit 1 when not.
pub(super) fn healthcheck(path: &Path) -> ExitCode {
    match probe_all(path) {
        Ok(urls) => {
            println!("healthy: {} answered 200", urls.join(" and "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ask every configured address; the URLs that answered 200.
fn probe_all(path: &Path) -> Result<Vec<String>, Unhealthy> {
    let loaded = config::load_offline(path).map_err(|errors| {
        Unhealthy::Config(
            errors
                .located()
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "invalid".into()),
        )
    })?;
    let rt = &loaded.value;
    let mut urls = vec![url(rt.listen, "/healthz")];
    if let Some(m) = rt.metrics_listen {
        urls.push(url(m, "/metrics"));
    }
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        // Loopback only: an HTTP_PROXY in the environment must not carry the probe away.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Unhealthy::Probe(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Unhealthy::Probe(e.to_string()))?;
    runtime.block_on(async {
        for u in &urls {
            probe(&client, u).await?;
        }
        Ok(urls)
    })
}

/// `GET url`: `Ok` on 200.
async fn probe(client: &reqwest::Client, url: &str) -> Result<(), Unhealthy> {
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            Unhealthy::Timeout { url: url.into() }
        } else {
            Unhealthy::Unreachable {
                url: url.into(),
                reason: innermost(&e),
            }
        }
    })?;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(Unhealthy::Status {
            url: url.into(),
            status,
        }),
    }
}

/// The URL of `path` on the loopback form of `addr`.
fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{}{path}", probe_addr(addr))
}

/// Where to ask a server bound to `addr`: a wildcard address on its
/// loopback, any other address as it is.
pub(crate) fn probe_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// The last error of a chain: the one that says what happened
/// (`Connection refused (os error 111)`), not `error sending request`.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::probe_addr;

    #[rustfmt::skip]
    #[test]
    fn a_wildcard_listen_is_asked_on_its_loopback() {
        for (listen, asked) in [
            ("0.0.0.0:4180",      "127.0.0.1:4180"),
            ("[::]:4180",         "[::1]:4180"),
            ("127.0.0.1:4180",    "127.0.0.1:4180"),
            ("[::1]:9180",        "[::1]:9180"),
            ("10.0.0.5:4180",     "10.0.0.5:4180"),
        ] {
            assert_eq!(probe_addr(listen.parse().unwrap()).to_string(), asked, "{listen}");
        }
    }
}
