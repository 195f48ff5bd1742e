//! Relabeling: Prometheus' `relabel_config` rules and their application to a label set.

use std::fmt;
use std::sync::LazyLock;

use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sextant_model::{is_valid_legacy_label_name, Labels, LabelsBuilder, NameValidation};

use crate::units::deserialize_parsed;
use crate::Error;

/// What a relabel rule does. Read case-insensitively from YAML, as Prometheus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// Writes `replacement` (expanded with the regex's groups) to `target_label` when the
    /// joined source values match.
    #[default]
    Replace,
    /// Drops the label set unless the joined source values match.
    Keep,
    /// Drops the label set if the joined source values match.
    Drop,
    /// Drops the label set unless the joined source values equal `target_label`'s value.
    KeepEqual,
    /// Drops the label set if the joined source values equal `target_label`'s value.
    DropEqual,
    /// Sets `target_label` to the MD5 of the joined source values modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches to the name `replacement` expands to.
    LabelMap,
    /// Removes every label whose name matches.
    LabelDrop,
    /// Removes every label whose name does not match.
    LabelKeep,
    /// Sets `target_label` to the joined source values in lower case.
    Lowercase,
    /// Sets `target_label` to the joined source values in upper case.
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = Error;
    fn from_str(s: &str) -> Result<Action, Error> {
        let lower = s.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| Error::value(format!("unknown relabel action {s:?}")))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Action, D::Error> {
        deserialize_parsed(deserializer)
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A relabel regex: RE2 syntax, fully anchored and with `.` matching newlines, compiled as
/// `^(?s:<source>)$` like Prometheus 3. Remembers whether it is the default `(.*)` from an
/// unset field, which Prometheus treats differently from an explicit `(.*)`.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    regex: Regex,
    is_default: bool,
}

const DEFAULT_REGEX: &str = "(.*)";

static DEFAULT_RELABEL_REGEX: LazyLock<RelabelRegex> = LazyLock::new(|| RelabelRegex {
    is_default: true,
    ..RelabelRegex::new(DEFAULT_REGEX).expect("the default regex compiles")
});

impl RelabelRegex {
    /// Compiles `source` anchored; fails with the regex engine's message.
    pub fn new(source: &str) -> Result<RelabelRegex, Error> {
        let regex = regex::RegexBuilder::new(&format!("^(?s:{})$", ascii_perl_classes(source)))
            .size_limit(1 << 22)
            .build()
            .map_err(|e| Error::value(format!("error parsing regexp: {}", one_line(&e.to_string()))))?;
        Ok(RelabelRegex { source: source.to_string(), regex, is_default: false })
    }

    /// The default `(.*)` of an unset `regex` field.
    pub fn default_regex() -> RelabelRegex {
        DEFAULT_RELABEL_REGEX.clone()
    }

    /// The regex as written in the configuration, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when this is the default of an unset field (not an explicit `(.*)`).
    pub fn is_default(&self) -> bool {
        self.is_default
    }

    /// True if the regex matches all of `value`.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// Go's RE2 `\d`, `\w`, `\s` (and negations) are ASCII-only where the `regex` crate's are
/// Unicode-aware; spell them out as ASCII classes (nested classes work inside `[...]` too).
fn ascii_perl_classes(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains('\\') {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 16);
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str("[\\t\\n\\x0C\\r ]"),
            Some('S') => out.push_str("[^\\t\\n\\x0C\\r ]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn one_line(message: &str) -> String {
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

impl crate::units::YamlScalar for RelabelRegex {
    const NULL: &'static str = "";
}

impl crate::units::YamlScalar for Action {
    const NULL: &'static str = "";
    fn from_null() -> Result<Action, Error> {
        Err(Error::value("relabel action cannot be empty"))
    }
}

impl std::str::FromStr for RelabelRegex {
    type Err = Error;
    fn from_str(s: &str) -> Result<RelabelRegex, Error> {
        RelabelRegex::new(s)
    }
}

impl Default for RelabelRegex {
    fn default() -> RelabelRegex {
        RelabelRegex::default_regex()
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &RelabelRegex) -> bool {
        self.source == other.source && self.is_default == other.is_default
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RelabelRegex, D::Error> {
        deserialize_parsed(deserializer)
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// One relabel rule, with Prometheus' defaults for unset fields: `separator: ;`,
/// `regex: (.*)`, `replacement: $1`, `action: replace`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` (a missing label is `""`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub modulus: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
    /// Which label names `target_label` may produce; not read from YAML: the scrape config's
    /// `metric_name_validation_scheme` is put here by [`crate::Config::load_file`]. `None`
    /// means the scheme passed to [`RelabelConfig::validate`].
    #[serde(skip)]
    pub name_validation: Option<NameValidation>,
}

/// The YAML form of [`RelabelConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RelabelConfigRaw {
    source_labels: Vec<String>,
    separator: String,
    regex: RelabelRegex,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

impl Default for RelabelConfigRaw {
    fn default() -> RelabelConfigRaw {
        let d = RelabelConfig::default();
        RelabelConfigRaw {
            source_labels: d.source_labels,
            separator: d.separator,
            regex: d.regex,
            modulus: d.modulus,
            target_label: d.target_label,
            replacement: d.replacement,
            action: d.action,
        }
    }
}

impl TryFrom<RelabelConfigRaw> for RelabelConfig {
    type Error = String;
    fn try_from(r: RelabelConfigRaw) -> Result<RelabelConfig, String> {
        if r.source_labels.iter().any(String::is_empty) {
            return Err("\"\" is not a valid label name in source_labels".into());
        }
        Ok(RelabelConfig {
            source_labels: r.source_labels,
            separator: r.separator,
            regex: r.regex,
            modulus: r.modulus,
            target_label: r.target_label,
            replacement: r.replacement,
            action: r.action,
            name_validation: None,
        })
    }
}

impl crate::units::Section for RelabelConfig {
    const NULL_MESSAGE: &'static str = "empty or null relabeling rule";
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RelabelConfig, D::Error> {
        crate::units::deserialize_checked::<D, RelabelConfigRaw, RelabelConfig>(deserializer)
    }
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

impl Default for RelabelConfig {
    fn default() -> RelabelConfig {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".to_string(),
            regex: RelabelRegex::default_regex(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".to_string(),
            action: Action::Replace,
            name_validation: None,
        }
    }
}

/// `relabelTargetLegacy`: a legacy label name in which `$1`, `${1}`, `$name` may appear.
static LEGACY_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$").expect("valid regex")
});

fn is_valid_name(scheme: NameValidation, name: &str) -> bool {
    match scheme {
        NameValidation::Legacy => is_valid_legacy_label_name(name),
        NameValidation::Utf8 => !name.is_empty(),
    }
}

impl RelabelConfig {
    /// Checks the rule as Prometheus' `relabel.Config.Validate` does, with its messages.
    /// `scheme` applies unless [`RelabelConfig::name_validation`] is set.
    pub fn validate(&self, scheme: NameValidation) -> Result<(), Error> {
        let scheme = self.name_validation.unwrap_or(scheme);
        let action = self.action;
        let err = |m: String| Err(Error::value(m));
        if self.modulus == 0 && action == Action::HashMod {
            return err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return err(format!("relabel configuration for {action} action requires 'target_label' value"));
        }
        let valid_with_vars = |value: &str| match scheme {
            NameValidation::Utf8 => !value.is_empty(),
            NameValidation::Legacy => LEGACY_TARGET.is_match(value),
        };
        let invalid_target = || err(format!("{:?} is invalid 'target_label' for {action} action", self.target_label));
        if action == Action::Replace {
            let has_var = self.target_label.contains('$');
            if (!has_var && !is_valid_name(scheme, &self.target_label))
                || (has_var && !valid_with_vars(&self.target_label))
            {
                return invalid_target();
            }
        }
        let simple_target =
            matches!(action, Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual);
        if simple_target && !is_valid_name(scheme, &self.target_label) {
            return invalid_target();
        }
        if simple_target && self.replacement != "$1" {
            return err(format!("'replacement' can not be set for {action} action"));
        }
        if action == Action::LabelMap && !valid_with_vars(&self.replacement) {
            return err(format!("{:?} is invalid 'replacement' for {action} action", self.replacement));
        }
        if action == Action::HashMod && !is_valid_name(scheme, &self.target_label) {
            return invalid_target();
        }
        let default_rest = self.modulus == 0 && self.separator == ";" && self.replacement == "$1";
        if matches!(action, Action::KeepEqual | Action::DropEqual) && !(default_rest && self.regex.is_default()) {
            return err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && !(default_rest && self.source_labels.is_empty() && self.target_label.is_empty())
        {
            return err(format!("{action} action requires only 'regex', and no other fields"));
        }
        Ok(())
    }

    fn scheme(&self) -> NameValidation {
        self.name_validation.unwrap_or_default()
    }
}

/// Applies `configs` in order to `labels`; `None` when a rule drops the set.
///
/// ```
/// use sextant_model::Labels;
/// use sextant_scrape::{relabel, RelabelConfig};
///
/// let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(
///     "- {source_labels: [a], regex: 'f(.*)', target_label: b, replacement: 'x${1}'}",
/// )?;
/// let out = relabel(&Labels::from_pairs([("a", "foo")]), &rules).unwrap();
/// assert_eq!(out.get("b"), Some("xoo"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn relabel(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    let mut builder = LabelsBuilder::new(labels);
    relabel_builder(&mut builder, configs).then(|| builder.labels())
}

/// Like [`relabel`] on a builder the caller owns; false when a rule drops the set.
pub fn relabel_builder(builder: &mut LabelsBuilder, configs: &[RelabelConfig]) -> bool {
    configs.iter().all(|cfg| apply(cfg, builder))
}

/// The source labels' values joined with the separator; borrowed for a single label.
fn source_value<'a>(cfg: &RelabelConfig, lb: &'a LabelsBuilder) -> std::borrow::Cow<'a, str> {
    match cfg.source_labels.as_slice() {
        [] => std::borrow::Cow::Borrowed(""),
        [one] => std::borrow::Cow::Borrowed(lb.get(one).unwrap_or("")),
        many => {
            let mut val = String::new();
            for (i, name) in many.iter().enumerate() {
                if i > 0 {
                    val.push_str(&cfg.separator);
                }
                val.push_str(lb.get(name).unwrap_or(""));
            }
            std::borrow::Cow::Owned(val)
        }
    }
}

fn apply(cfg: &RelabelConfig, lb: &mut LabelsBuilder) -> bool {
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(&source_value(cfg, lb)),
        Action::Keep => return cfg.regex.is_match(&source_value(cfg, lb)),
        Action::DropEqual => return lb.get(&cfg.target_label).unwrap_or("") != source_value(cfg, lb),
        Action::KeepEqual => return lb.get(&cfg.target_label).unwrap_or("") == source_value(cfg, lb),
        _ => {}
    }
    let val = match cfg.action {
        Action::LabelMap | Action::LabelDrop | Action::LabelKeep => String::new(),
        _ => source_value(cfg, lb).into_owned(),
    };
    match cfg.action {
        Action::Drop | Action::Keep | Action::DropEqual | Action::KeepEqual => {}
        Action::Replace => {
            let has_vars = cfg.target_label.contains('$') || cfg.replacement.contains('$');
            if val.is_empty() && cfg.regex.is_default() && !has_vars {
                lb.set(&cfg.target_label, &cfg.replacement);
                return true;
            }
            if !has_vars {
                // Nothing to expand: a match test is enough (and much cheaper than captures).
                if cfg.regex.is_match(&val) && is_valid_name(cfg.scheme(), &cfg.target_label) {
                    lb.set(&cfg.target_label, &cfg.replacement);
                }
                return true;
            }
            let Some(caps) = cfg.regex.regex.captures(&val) else { return true };
            let mut target = String::new();
            caps.expand(&cfg.target_label, &mut target);
            if !is_valid_name(cfg.scheme(), &target) {
                return true;
            }
            let mut res = String::new();
            caps.expand(&cfg.replacement, &mut res);
            if res.is_empty() {
                lb.del(&target);
            } else {
                lb.set(&target, &res);
            }
        }
        Action::Lowercase => {
            lb.set(&cfg.target_label, &val.to_lowercase());
        }
        Action::Uppercase => {
            lb.set(&cfg.target_label, &val.to_uppercase());
        }
        Action::HashMod => {
            let sum = Md5::digest(val.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&sum[8..16]);
            let modulus = cfg.modulus.max(1);
            lb.set(&cfg.target_label, &(u64::from_be_bytes(tail) % modulus).to_string());
        }
        Action::LabelMap => {
            for l in lb.labels().iter() {
                if cfg.regex.is_match(&l.name) {
                    let name = cfg.regex.regex.replace_all(&l.name, cfg.replacement.as_str());
                    if !name.is_empty() {
                        lb.set(&name, &l.value);
                    }
                }
            }
        }
        Action::LabelDrop => {
            lb.retain(|name, _| !cfg.regex.is_match(name));
        }
        Action::LabelKeep => {
            lb.retain(|name, _| cfg.regex.is_match(name));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_like_re2() {
        for (regex, value, want) in [
            (r"\d+", "123", true),
            (r"\d+", "\u{663}", false),
            (r"\w+", "a_Z9", true),
            (r"\w+", "é", false),
            (r"\W", "é", true),
            (r"[\w.-]+", "a.b-c", true),
            (r"[^\d]+", "abc", true),
            (r"\s", "\u{a0}", false),
            (r"\s", "\t", true),
            (r"\\d", "\\d", true),
            (r"\pL+", "é", true),
            (r"a\.b", "a.b", true),
        ] {
            assert_eq!(RelabelRegex::new(regex).unwrap().is_match(value), want, "{regex} {value:?}");
        }
        assert_eq!(RelabelRegex::new(r"x\d").unwrap().as_str(), r"x\d");
    }
}
