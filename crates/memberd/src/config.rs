//! memberd.toml: any setting that has a `MEMBERD_*` variable, kept in a file.
//!
//! figment layers the settings: built-in defaults < the file < the environment < the flags.
//! clap still reads the environment and the flags (so that `--help` shows both and parses
//! them), and its `value_source` says which layer each value it parsed belongs to; the file
//! goes in between. Every value, whatever its layer, is then checked by the same serde types,
//! so a setting out of range is refused alike from a flag, a variable or the file, with an
//! error that names where it came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};

use crate::cli::{
    BillingArgs, Cli, Command, ConfigCommand, EmailArgs, OperatorsCommand, ServeArgs, WebhookArgs,
    WorkerArgs,
};

/// Read from the working directory when neither --config nor MEMBERD_CONFIG names a file.
pub const DEFAULT_FILE: &str = "memberd.toml";

/// Settings whose value may carry a password: `config show` masks it.
const SECRETS: &[&str] = &["database_url", "smtp_url", "redis_url"];

const DEFAULTS: &str = "default";
const ENVIRONMENT: &str = "environment";
const FLAGS: &str = "command line";

/// What was read, for the commands that report on it.
pub struct Settings {
    pub file: Option<SettingsFile>,
    catalog: Vec<Setting>,
    global: Figment,
    /// The layers of the command's own settings, for the commands that have some.
    command: Option<Figment>,
}

/// One setting: its key in the file, its flag and its variable.
struct Setting {
    key: String,
    flag: String,
    variable: String,
    global: bool,
}

/// Every setting, as `memberd serve --help` lists them, global ones first. Every other
/// command's settings are among them (a test checks it).
fn catalog() -> Vec<Setting> {
    let command = Cli::command();
    let serve = command
        .find_subcommand("serve")
        .map(|serve| serve.get_arguments().collect::<Vec<_>>())
        .unwrap_or_default();
    let mut settings: Vec<Setting> = Vec::new();
    for arg in command.get_arguments().chain(serve) {
        let (Some(variable), Some(flag)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let key = arg.get_id().as_str();
        if key == "config" || settings.iter().any(|s| s.key == key) {
            continue;
        }
        settings.push(Setting {
            key: key.to_owned(),
            flag: format!("--{flag}"),
            variable: variable.to_string_lossy().into_owned(),
            global: arg.is_global_set(),
        });
    }
    settings
}

/// Parses the command line, reads the settings file and layers every setting of the command
/// to run. The errors, one per wrong setting, name the file and line, the variable or the
/// flag it came from.
pub fn load(matches: &ArgMatches) -> Result<(Cli, Settings), Vec<String>> {
    let mut cli = Cli::from_arg_matches(matches).map_err(|e| vec![e.to_string()])?;
    let file = SettingsFile::find(cli.config.as_deref(), matches.value_source("config"))
        .map_err(|e| vec![e])?;
    let catalog = catalog();
    let mut errors = match &file {
        Some(file) => file.check_keys(&catalog),
        None => Vec::new(),
    };
    let layering = Layering {
        file: file.as_ref(),
        catalog: &catalog,
    };
    let global = layering.figment(&[serialized(&cli.global)], matches);
    match global.extract() {
        Ok(layered) => cli.global = layered,
        Err(e) => errors.extend(layering.describe(e)),
    }
    let leaf = leaf(matches);
    let command = match &mut cli.command {
        Command::Serve(args)
        | Command::Config(ConfigCommand::Check(args) | ConfigCommand::Show(args)) => {
            Some(layering.with_workers(args, leaf, &mut errors))
        }
        Command::Worker(args) => Some(layering.with_workers(args, leaf, &mut errors)),
        Command::Operators(
            OperatorsCommand::Create { public, .. } | OperatorsCommand::Link { public, .. },
        ) => {
            let figment = layering.figment(&[serialized(&*public)], leaf);
            match figment.extract() {
                Ok(layered) => *public = layered,
                Err(e) => errors.extend(layering.describe(e)),
            }
            Some(figment)
        }
        _ => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        cli,
        Settings {
            file,
            catalog,
            global,
            command,
        },
    ))
}

/// The matches of the subcommand that runs (`check` of `config check`).
fn leaf(matches: &ArgMatches) -> &ArgMatches {
    match matches.subcommand() {
        Some((_, sub)) => leaf(sub),
        None => matches,
    }
}

/// The values clap parsed, as figment's values. A part is a struct of settings; the ones
/// that hold others (`ServeArgs` holds `EmailArgs`) skip them, so each is a flat dict.
fn serialized<T: Serialize>(part: &T) -> Dict {
    match Value::serialize(part) {
        Ok(Value::Dict(_, dict)) => dict,
        _ => Dict::new(),
    }
}

/// A command's settings that hold the workers' (which serde skips, so that each part is
/// flat and figment's errors name its keys).
trait WithWorkers: Serialize + DeserializeOwned {
    fn parts(&mut self) -> (&mut EmailArgs, &mut WebhookArgs, &mut BillingArgs);
}

impl WithWorkers for ServeArgs {
    fn parts(&mut self) -> (&mut EmailArgs, &mut WebhookArgs, &mut BillingArgs) {
        (&mut self.email, &mut self.webhooks, &mut self.billing)
    }
}

impl WithWorkers for WorkerArgs {
    fn parts(&mut self) -> (&mut EmailArgs, &mut WebhookArgs, &mut BillingArgs) {
        (&mut self.email, &mut self.webhooks, &mut self.billing)
    }
}

struct Layering<'a> {
    file: Option<&'a SettingsFile>,
    catalog: &'a [Setting],
}

impl Layering<'_> {
    /// Defaults < file < environment < flags, over the settings of `parts`.
    fn figment(&self, parts: &[Dict], matches: &ArgMatches) -> Figment {
        let (mut defaults, mut environment, mut flags) = (Dict::new(), Dict::new(), Dict::new());
        for (key, value) in parts.iter().flatten() {
            let layer = match matches.value_source(key) {
                Some(ValueSource::DefaultValue) => &mut defaults,
                Some(ValueSource::EnvVariable) => &mut environment,
                Some(ValueSource::CommandLine) => &mut flags,
                _ => continue,
            };
            layer.insert(key.clone(), value.clone());
        }
        let mut figment = Figment::from(Layer(DEFAULTS, defaults));
        if let Some(file) = self.file {
            figment = figment.merge(file);
        }
        figment
            .merge(Layer(ENVIRONMENT, environment))
            .merge(Layer(FLAGS, flags))
    }

    /// The settings of a command that runs workers: its own, and its parts'.
    fn with_workers<T: WithWorkers>(
        &self,
        args: &mut T,
        matches: &ArgMatches,
        errors: &mut Vec<String>,
    ) -> Figment {
        let own = serialized(&*args);
        let (email, webhooks, billing) = args.parts();
        let figment = self.figment(
            &[
                own,
                serialized(&*email),
                serialized(&*webhooks),
                serialized(&*billing),
            ],
            matches,
        );
        let parts = (
            figment.extract::<T>(),
            figment.extract(),
            figment.extract(),
            figment.extract(),
        );
        match parts {
            (Ok(layered), Ok(email), Ok(webhooks), Ok(billing)) => {
                *args = layered;
                let parts = args.parts();
                (*parts.0, *parts.1, *parts.2) = (email, webhooks, billing);
            }
            (own, email, webhooks, billing) => {
                errors.extend(self.failures(own));
                errors.extend(self.failures(email));
                errors.extend(self.failures(webhooks));
                errors.extend(self.failures(billing));
            }
        }
        figment
    }

    fn failures<T>(&self, extracted: Result<T, figment::Error>) -> Vec<String> {
        extracted
            .err()
            .map(|e| self.describe(e))
            .unwrap_or_default()
    }

    /// figment's errors, each saying where the wrong value came from.
    fn describe(&self, errors: figment::Error) -> Vec<String> {
        errors
            .into_iter()
            .map(|error| {
                let key = error.path.join(".");
                let setting = self.catalog.iter().find(|s| s.key == key);
                let name = error.metadata.as_ref().map(|m| m.name.as_ref());
                let origin = match (name, setting) {
                    (Some(ENVIRONMENT), Some(setting)) => setting.variable.clone(),
                    (Some(FLAGS), Some(setting)) => setting.flag.clone(),
                    _ => match (self.file, error.metadata.as_ref()) {
                        (Some(file), Some(m))
                            if m.source.as_ref().and_then(|s| s.file_path())
                                == Some(&file.path) =>
                        {
                            format!("{}: {key}", file.at(&key))
                        }
                        _ => key.clone(),
                    },
                };
                if origin.is_empty() {
                    error.kind.to_string()
                } else {
                    format!("{origin}: {}", error.kind)
                }
            })
            .collect()
    }
}

/// A layer of values from clap: the defaults, the environment's or the flags'.
struct Layer(&'static str, Dict);

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.0)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.1.clone()))
    }
}

/// memberd.toml, or the file --config names: one `key = value` line per setting.
pub struct SettingsFile {
    pub path: PathBuf,
    values: toml::Table,
    /// The line of each key.
    lines: HashMap<String, usize>,
}

impl SettingsFile {
    /// The file named, which must exist, or memberd.toml here if there is one.
    fn find(named: Option<&Path>, by: Option<ValueSource>) -> Result<Option<SettingsFile>, String> {
        let path = match named {
            Some(path) => path.to_owned(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(None),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let by = match by {
                    Some(ValueSource::EnvVariable) => " (named by MEMBERD_CONFIG)",
                    Some(ValueSource::CommandLine) => " (named by --config)",
                    _ => "",
                };
                return Err(format!("{}{by}: could not read it: {e}", path.display()));
            }
        };
        SettingsFile::parse(path, &text).map(Some)
    }

    fn parse(path: PathBuf, text: &str) -> Result<SettingsFile, String> {
        let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let spanned = toml::de::DeTable::parse(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_at(span.start));
            format!(
                "{}:{line}: not TOML: {}",
                path.display(),
                e.message().trim()
            )
        })?;
        let lines = spanned
            .get_ref()
            .iter()
            .map(|(key, _)| (key.get_ref().to_string(), line_at(key.span().start)))
            .collect();
        let values = text
            .parse::<toml::Table>()
            .map_err(|e| format!("{}: not TOML: {}", path.display(), e.message().trim()))?;
        Ok(SettingsFile {
            path,
            values,
            lines,
        })
    }

    /// `memberd.toml:4`, where `key` is set.
    fn at(&self, key: &str) -> String {
        match self.lines.get(key) {
            Some(line) => format!("{}:{line}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    /// Every key must be a setting, written at the top level.
    fn check_keys(&self, catalog: &[Setting]) -> Vec<String> {
        let mut errors = Vec::new();
        let mut keys: Vec<&String> = self.values.keys().collect();
        keys.sort_by_key(|key| self.lines.get(*key));
        for key in keys {
            let known = catalog.iter().any(|s| &s.key == key);
            let message = match &self.values[key] {
                toml::Value::Table(_) if !known => format!(
                    "[{key}]: settings are not grouped in sections; write each as `name = value` at the top"
                ),
                toml::Value::Table(_) => format!("{key}: a value, not a table"),
                _ if known => continue,
                _ => match closest(key, catalog) {
                    Some(near) => format!("{key}: not a setting of memberd; did you mean {near}?"),
                    None => format!(
                        "{key}: not a setting of memberd (`memberd config show` lists them)"
                    ),
                },
            };
            errors.push(format!("{}: {message}", self.at(key)));
        }
        errors
    }
}

impl Provider for &SettingsFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(self.path.display().to_string(), self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = match Value::serialize(&self.values)? {
            Value::Dict(_, dict) => dict,
            _ => Dict::new(),
        };
        Ok(Profile::Default.collect(dict))
    }
}

fn closest<'a>(key: &str, catalog: &'a [Setting]) -> Option<&'a str> {
    catalog
        .iter()
        .map(|s| (strsim::jaro_winkler(key, &s.key), s.key.as_str()))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, key)| key)
}

impl Settings {
    /// Where `key`'s value came from, as a person would look for it: `memberd.toml:4`,
    /// `MEMBERD_LISTEN`, `--listen` or `default`.
    pub fn origin(&self, key: &str) -> String {
        let Some(setting) = self.catalog.iter().find(|s| s.key == key) else {
            return key.to_owned();
        };
        match self.layers_of(setting).and_then(|f| f.find_metadata(key)) {
            Some(m) if m.name == ENVIRONMENT => setting.variable.clone(),
            Some(m) if m.name == FLAGS => setting.flag.clone(),
            Some(m) if m.name == DEFAULTS => "default".to_owned(),
            Some(_) => match &self.file {
                Some(file) => file.at(key),
                None => key.to_owned(),
            },
            None => "not set".to_owned(),
        }
    }

    /// The setting as an error names it: `memberd.toml:4: public_url`, `MEMBERD_PUBLIC_URL`
    /// or `--public-url`.
    pub fn named(&self, key: &str) -> String {
        let origin = self.origin(key);
        if origin.contains(':') {
            format!("{origin}: {key}")
        } else if origin == "default" || origin == "not set" {
            key.to_owned()
        } else {
            origin
        }
    }

    fn layers_of(&self, setting: &Setting) -> Option<&Figment> {
        if setting.global {
            Some(&self.global)
        } else {
            self.command.as_ref()
        }
    }

    /// The settings in effect as a settings file, each with where it comes from.
    pub fn show(&self) -> String {
        let mut out =
            String::from("# The settings `memberd serve` runs with: built-in defaults, then ");
        match &self.file {
            Some(file) => out.push_str(&file.path.display().to_string()),
            None => out.push_str("no settings file"),
        }
        out.push_str(", then MEMBERD_* variables, then flags.\n");
        for setting in &self.catalog {
            let value = self
                .layers_of(setting)
                .and_then(|f| f.find_value(&setting.key).ok())
                .and_then(|value| toml::Value::try_from(value).ok());
            let line = match value {
                Some(toml::Value::String(text)) if SECRETS.contains(&setting.key.as_str()) => {
                    format!("{} = {}", setting.key, toml::Value::String(masked(&text)))
                }
                Some(value) => format!("{} = {value}", setting.key),
                None => format!("# {} =", setting.key),
            };
            out.push_str(&format!("{line:<50} # {}\n", self.origin(&setting.key)));
        }
        out
    }
}

/// The URL with its password, and any `password=` in its query, replaced by `****`.
pub fn masked(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                out = format!("{scheme}://{user}:****@{host}{}", &rest[authority_end..]);
            }
        }
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("password") => {
                    format!("{name}=****")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}?{}", pairs.join("&"));
    }
    out
}

/// For `#[serde(deserialize_with)]`: a whole number from MIN to MAX.
pub fn between<'de, D, T, const MIN: u64, const MAX: u64>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Into<u64> + Copy,
{
    let value = T::deserialize(d)?;
    let n: u64 = value.into();
    if (MIN..=MAX).contains(&n) {
        Ok(value)
    } else if MAX == u64::from(u32::MAX) || MAX == u64::MAX {
        Err(D::Error::custom(format!("must be at least {MIN}, not {n}")))
    } else {
        Err(D::Error::custom(format!(
            "must be from {MIN} to {MAX}, not {n}"
        )))
    }
}

/// For `#[serde(deserialize_with)]`: the days of the dunning retries, each from 1 to 60.
pub fn retry_days<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    let days = Vec::<u32>::deserialize(d)?;
    match days.iter().find(|day| !(1..=60).contains(*day)) {
        Some(day) => Err(D::Error::custom(format!(
            "each retry is 1 to 60 days after the failed charge, not {day}"
        ))),
        None if days.is_empty() => Err(D::Error::custom("at least one retry")),
        None => Ok(days),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_of_every_command_is_in_the_catalog() {
        fn walk(command: &clap::Command, catalog: &[Setting], path: &str) {
            for arg in command.get_arguments() {
                let key = arg.get_id().as_str();
                if arg.get_env().is_some() && key != "config" {
                    assert!(
                        catalog.iter().any(|s| s.key == key),
                        "{path} --{key} has a variable but is not a setting of memberd.toml"
                    );
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, catalog, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&Cli::command(), &catalog(), "memberd");
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            masked("postgres://memberd:s3cret@db:5432/memberd?sslmode=require"),
            "postgres://memberd:****@db:5432/memberd?sslmode=require"
        );
        assert_eq!(
            masked("postgres://db/memberd?user=m&password=s3cret"),
            "postgres://db/memberd?user=m&password=****"
        );
        assert_eq!(
            masked("redis://:s3cret@cache:6379/0"),
            "redis://:****@cache:6379/0"
        );
        assert_eq!(masked("smtp://relay:25"), "smtp://relay:25");
        assert_eq!(masked("sqlite:memberd.db"), "sqlite:memberd.db");
    }
}
