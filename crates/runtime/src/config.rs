//! Config loading: a YAML file, then environment variables on top.
//!
//! `INSPECTOR_<SECTION>__<FIELD>=value` overrides `section.field` (double
//! underscore between levels), e.g. `INSPECTOR_NATS__URL=nats://nats:4222`.
//! Config structs use `deny_unknown_fields`, so a typo is an error naming the
//! field, not a silently ignored setting. A binary that cannot load its config
//! exits with [`EXIT_CONFIG`] (64, `EX_USAGE`).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::Serialized;
use serde::de::DeserializeOwned;

/// Exit code for a bad config (`EX_USAGE` from sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// Prefix of environment variables that override config fields.
pub const ENV_PREFIX: &str = "INSPECTOR_";

/// `INSPECTOR_*` variables that are not field overrides (the binaries read
/// `INSPECTOR_CONFIG` as the config file path).
const RESERVED_ENV: &[&str] = &["INSPECTOR_CONFIG"];

/// Why a config could not be loaded; the message names the file and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("invalid config ({origin}): {message}")]
    Invalid { origin: String, message: String },
}

/// The config files of `service` shipped in `deploy/`: the local example
/// (`deploy/config`), the Kubernetes one (`deploy/kubernetes/base/config`)
/// and the docker-compose one (`deploy/compose`). Each service's tests load
/// them all, so none can drift from what the service accepts.
pub fn shipped_configs(service: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        "deploy/config",
        "deploy/kubernetes/base/config",
        "deploy/compose",
    ]
    .iter()
    .map(|dir| root.join(dir).join(format!("{service}.yaml")))
    .collect()
}

/// Loads `T` from the YAML file at `path` (if any) with `INSPECTOR_*`
/// environment overrides from `env`.
pub fn load_config<T: DeserializeOwned>(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let (tree, origin) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            (parse_yaml(path, &text)?, path.display().to_string())
        }
        None => (
            serde_json::Value::Object(Default::default()),
            "defaults".into(),
        ),
    };
    let overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(key, _)| key.starts_with(ENV_PREFIX) && !RESERVED_ENV.contains(&key.as_str()))
        .collect();
    let origin = if overrides.is_empty() {
        origin
    } else {
        let names: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
        format!("{origin} + env {}", names.join(", "))
    };
    // Overrides come from the `env` argument rather than figment's `Env`
    // provider (which reads the process environment), so tests can pass their own.
    let mut figment = Figment::from(Serialized::globals(tree));
    for (key, value) in overrides {
        let path = key[ENV_PREFIX.len()..].to_lowercase().replace("__", ".");
        figment = figment.merge(Serialized::global(&path, parse_env_value(&value)));
    }
    figment
        .extract::<T>()
        .map_err(|error| ConfigError::Invalid {
            origin,
            message: describe(error),
        })
}

/// Loads `T` from YAML text alone (no environment), e.g. a built-in config.
pub fn load_config_from_str<T: DeserializeOwned>(yaml: &str) -> Result<T, ConfigError> {
    let tree = parse_yaml(Path::new("<built-in>"), yaml)?;
    Figment::from(Serialized::globals(tree))
        .extract::<T>()
        .map_err(|error| ConfigError::Invalid {
            origin: "built-in config".into(),
            message: describe(error),
        })
}

/// Loads from the process environment (the binaries' case).
pub fn load_config_from_process<T: DeserializeOwned>(
    path: Option<&Path>,
) -> Result<T, ConfigError> {
    load_config(path, std::env::vars())
}

/// The binaries' entry point: loads `T` from `path` plus the process
/// environment and validates it; on any problem prints it, naming the field,
/// and exits with [`EXIT_CONFIG`].
pub fn load_or_exit<T: DeserializeOwned>(
    service: &str,
    path: Option<&Path>,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> T {
    let result = load_config_from_process::<T>(path)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            validate(&config)
                .map(|()| config)
                .map_err(|e| format!("invalid config: {e}"))
        });
    match result {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{service}: {message}");
            std::process::exit(EXIT_CONFIG);
        }
    }
}

fn parse_yaml(path: &Path, text: &str) -> Result<serde_json::Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    // YAML 1.2 booleans only: `y`, `yes`, `on`, `no` and `off` stay strings,
    // so `shadow: y` is an error naming the field instead of a silent `true`.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Env values are text; read `true`, numbers and JSON lists/maps as such so
/// they can set typed fields, and anything else as a string.
fn parse_env_value(value: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(
            parsed @ (serde_json::Value::Bool(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_)),
        ) => parsed,
        _ => serde_json::Value::String(value.to_string()),
    }
}

fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|error| {
            let field = error.path.join(".");
            if field.is_empty() {
                error.kind.to_string()
            } else {
                format!("field `{field}`: {}", error.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        nats: Nats,
        #[serde(default)]
        metrics: Vec<BTreeMap<String, String>>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Nats {
        url: String,
        #[serde(default)]
        retries: u32,
        #[serde(default)]
        tls: bool,
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn env_overrides_the_file() {
        let file = write("nats:\n  url: nats://a:4222\n  retries: 1\n");
        let env = [
            (
                "INSPECTOR_NATS__URL".to_string(),
                "nats://b:4222".to_string(),
            ),
            ("INSPECTOR_NATS__TLS".to_string(), "true".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let config: Sample = load_config(Some(file.path()), env).unwrap();
        assert_eq!(config.nats.url, "nats://b:4222");
        assert_eq!(config.nats.retries, 1);
        assert!(config.nats.tls);
    }

    /// YAML 1.1's `y`/`yes`/`on` are not booleans here: a typo-like value is
    /// an error naming the field, never a silent `true`.
    #[test]
    fn only_yaml_1_2_booleans() {
        let file = write("nats:\n  url: x\n  tls: y\n");
        let text = load_config::<Sample>(Some(file.path()), [])
            .unwrap_err()
            .to_string();
        assert!(text.contains("tls"), "{text}");
        let file = write("nats:\n  url: x\n  tls: true\n");
        assert!(
            load_config::<Sample>(Some(file.path()), [])
                .unwrap()
                .nats
                .tls
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let file = write("nats:\n  url: x\n  retires: 3\n");
        let err = load_config::<Sample>(Some(file.path()), []).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("retires"), "{text}");
        assert!(text.contains("nats"), "{text}");
    }

    #[test]
    fn wrong_type_is_named() {
        let file = write("nats:\n  url: x\n  retries: many\n");
        let text = load_config::<Sample>(Some(file.path()), [])
            .unwrap_err()
            .to_string();
        assert!(text.contains("field `nats.retries`"), "{text}");
    }

    #[test]
    fn bad_yaml_and_missing_file() {
        let file = write("nats: [unclosed\n");
        let err = load_config::<Sample>(Some(file.path()), []).unwrap_err();
        assert!(matches!(err, ConfigError::Yaml { .. }), "{err}");
        let err = load_config::<Sample>(Some(Path::new("/nonexistent.yaml")), []).unwrap_err();
        assert!(err.to_string().contains("/nonexistent.yaml"), "{err}");
    }

    #[test]
    fn missing_required_field() {
        let file = write("metrics: []\n");
        let text = load_config::<Sample>(Some(file.path()), [])
            .unwrap_err()
            .to_string();
        assert!(text.contains("nats"), "{text}");
    }
}
