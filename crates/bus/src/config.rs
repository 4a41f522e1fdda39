//! How to reach NATS and how the durable stream is laid out.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::BusError;

/// NATS connection and stream settings (`nats:` in every service's config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated, e.g. `nats://nats:4222`.
    #[serde(default = "default_url")]
    pub url: String,
    /// Prefix of every subject (see ARCHITECTURE.md for the subject list).
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// JetStream stream holding findings and run summaries; default derived
    /// from the prefix (`inspector` → `INSPECTOR_EVENTS`).
    #[serde(default)]
    pub stream: Option<String>,
    /// Window in which a re-published message id is stored only once.
    #[serde(default = "default_duplicate_window", with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// How long the alerts stream keeps alert transitions, so a consumer
    /// that was down reads what it missed.
    #[serde(default = "default_alert_max_age", with = "humantime_serde")]
    pub alert_max_age: Duration,
    /// How long the stream keeps messages (covers an aggregator outage).
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// Copies of the stream kept by a NATS cluster (1, 3 or 5; at most the
    /// number of JetStream servers). 3 survives the loss of one server.
    #[serde(default = "default_stream_replicas")]
    pub stream_replicas: usize,
    /// NATS credentials file (JWT + nkey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// User name (with `password`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password (with `user`).
    #[serde(default)]
    pub password: Option<String>,
    /// Authentication token.
    #[serde(default)]
    pub token: Option<String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: NatsTlsConfig,
    /// A file for what could not be published before shutdown; sent first
    /// at the next start. Put it on a volume that outlives the pod (the
    /// StatefulSets' `state` volume). Unset: unsent messages are lost at exit.
    #[serde(default)]
    pub spool_path: Option<PathBuf>,
    /// How long to wait for the first connection.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

/// TLS towards NATS (rustls with the process' ring provider).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsTlsConfig {
    /// Require TLS even if the server does not ask for it.
    #[serde(default)]
    pub required: bool,
    /// Extra PEM CA certificates to trust.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS, with `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_url() -> String {
    "nats://127.0.0.1:4222".into()
}
fn default_prefix() -> String {
    "inspector".into()
}
fn default_duplicate_window() -> Duration {
    Duration::from_secs(120)
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_alert_max_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_stream_replicas() -> usize {
    1
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: default_url(),
            subject_prefix: default_prefix(),
            stream: None,
            duplicate_window: default_duplicate_window(),
            max_age: default_max_age(),
            alert_max_age: default_alert_max_age(),
            stream_replicas: default_stream_replicas(),
            credentials_file: None,
            user: None,
            password: None,
            token: None,
            tls: NatsTlsConfig::default(),
            connect_timeout: default_connect_timeout(),
            spool_path: None,
        }
    }
}

impl NatsConfig {
    /// A config for `url` and `prefix`, everything else default.
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            subject_prefix: prefix.into(),
            ..NatsConfig::default()
        }
    }

    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers().is_empty() {
            return Err("nats.url must name at least one server".into());
        }
        for server in self.servers() {
            if server.parse::<async_nats::ServerAddr>().is_err() {
                return Err(format!(
                    "nats.url: {:?} is not a NATS server URL",
                    inspector_domain::redact_url(&server)
                ));
            }
        }
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(format!(
                "nats.stream_replicas must be 1 to 5 (JetStream's limit), got {}",
                self.stream_replicas
            ));
        }
        Ok(())
    }

    /// The server URLs of `url` (comma-separated).
    pub fn servers(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|server| match without_userinfo(server) {
                Some((bare, _)) => bare,
                None => server.to_string(),
            })
            .collect()
    }

    /// Credentials written into a server URL (`nats://user:pass@host`,
    /// `nats://token@host`), the first found. They are taken out of the
    /// URLs handed to the client, which logs its server addresses.
    fn url_credentials(&self) -> Option<UrlCredentials> {
        self.url
            .split(',')
            .map(str::trim)
            .find_map(|server| without_userinfo(server).and_then(|(_, credentials)| credentials))
    }

    /// The alerts stream: the findings stream's name with `_ALERTS` for
    /// `_EVENTS` (`INSPECTOR_ALERTS`).
    pub fn alert_stream_name(&self) -> String {
        let events = self.stream_name();
        match events.strip_suffix("_EVENTS") {
            Some(base) => format!("{base}_ALERTS"),
            None => format!("{events}_ALERTS"),
        }
    }

    /// The history stream of inspection reports: `<PREFIX>_REPORTS`.
    pub fn report_stream_name(&self) -> String {
        self.sibling_stream("REPORTS")
    }

    /// The history stream of incident transitions: `<PREFIX>_INCIDENTS`.
    pub fn incident_stream_name(&self) -> String {
        self.sibling_stream("INCIDENTS")
    }

    fn sibling_stream(&self, what: &str) -> String {
        let events = self.stream_name();
        match events.strip_suffix("_EVENTS") {
            Some(base) => format!("{base}_{what}"),
            None => format!("{events}_{what}"),
        }
    }

    /// The stream name in use.
    pub fn stream_name(&self) -> String {
        self.stream.clone().unwrap_or_else(|| {
            let base: String = self
                .subject_prefix
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{base}_EVENTS")
        })
    }

    /// A core-NATS client with this config's servers, credentials and TLS
    /// (for request-reply callers such as the CLI).
    pub async fn connect_client(&self, client_name: &str) -> Result<async_nats::Client, BusError> {
        self.connect_options(client_name)
            .await?
            .connect(self.servers())
            .await
            .map_err(|e| BusError::Connect {
                url: inspector_domain::redact_url(&self.url),
                source: Box::new(e),
            })
    }

    pub(crate) async fn connect_options(
        &self,
        client_name: &str,
    ) -> Result<async_nats::ConnectOptions, BusError> {
        let mut options = match &self.credentials_file {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| BusError::Connect {
                    url: inspector_domain::redact_url(&self.url),
                    source: Box::new(CredentialsFile {
                        path: path.clone(),
                        source: e,
                    }),
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        } else if let Some(token) = &self.token {
            options = options.token(token.clone());
        } else {
            match self.url_credentials() {
                Some(UrlCredentials::UserPassword { user, password }) => {
                    options = options.user_and_password(user, password);
                }
                Some(UrlCredentials::Token(token)) => options = options.token(token),
                None => {}
            }
        }
        if let Some(ca) = &self.tls.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls.cert_file, &self.tls.key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options
            .require_tls(self.tls.required)
            .name(client_name)
            .connection_timeout(self.connect_timeout)
            // Keep reconnecting forever: a NATS outage must not kill a sensor.
            .max_reconnects(None))
    }
}

/// Credentials a server URL carried.
enum UrlCredentials {
    UserPassword { user: String, password: String },
    Token(String),
}

/// `server` without its userinfo, and what the userinfo held (decoded);
/// `None` when `server` is not a URL or has no userinfo.
fn without_userinfo(server: &str) -> Option<(String, Option<UrlCredentials>)> {
    let mut url = url::Url::parse(server).ok()?;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let credentials = match url.password() {
        Some(password) => Some(UrlCredentials::UserPassword {
            user,
            password: decode(password),
        }),
        None if !user.is_empty() => Some(UrlCredentials::Token(user)),
        None => None,
    };
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some((
        url.to_string().trim_end_matches('/').to_string(),
        credentials,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_server_urls() {
        let config = NatsConfig::new("nats://ops:p%40ss@n1:4222, nats://n2:4222", "x");
        assert_eq!(config.servers(), ["nats://n1:4222", "nats://n2:4222"]);
        match config.url_credentials() {
            Some(UrlCredentials::UserPassword { user, password }) => {
                assert_eq!((user.as_str(), password.as_str()), ("ops", "p@ss"));
            }
            _ => panic!("user and password expected"),
        }
        let token = NatsConfig::new("nats://t0ken@n1:4222", "x");
        assert!(matches!(token.url_credentials(), Some(UrlCredentials::Token(t)) if t == "t0ken"));
        assert_eq!(token.servers(), ["nats://n1:4222"]);
    }

    #[test]
    fn stream_name_from_prefix() {
        assert_eq!(
            NatsConfig::new("x", "inspector").stream_name(),
            "INSPECTOR_EVENTS"
        );
        assert_eq!(
            NatsConfig::new("x", "t_1a.b").stream_name(),
            "T_1A_B_EVENTS"
        );
    }
}

/// The credentials file named in `nats.credentials_file` could not be used.
#[derive(Debug, thiserror::Error)]
#[error("credentials file {}", path.display())]
struct CredentialsFile {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}
