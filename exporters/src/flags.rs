//! Go-style command-line flags shared by the database exporters: `--name=value`,
//! `--name value`, the single-dash `-name=value`, and booleans as `--name`, `--no-name` or
//! `--name=false`, as kingpin and Go's `flag` package accept them.

// Each exporter uses a different subset of these helpers.
#![cfg_attr(
    not(all(feature = "redis", feature = "postgres", feature = "mysql", feature = "blackbox")),
    allow(dead_code)
)]

use crate::Error;

pub(crate) fn flag_error(flag: &str, message: impl Into<String>) -> Error {
    Error::Flag { flag: flag.to_string(), message: message.into() }
}

/// Splits `args` into `(name, value)` pairs; booleans get `"true"` or `"false"`. Names not in
/// `bool_flags` or `value_flags` are errors.
pub(crate) fn parse(
    args: &[String],
    bool_flags: &[&str],
    value_flags: &[&str],
) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    let mut idx = 0;
    while idx < args.len() {
        let raw = &args[idx];
        idx += 1;
        let Some(body) = raw.strip_prefix("--").or_else(|| raw.strip_prefix('-')) else {
            return Err(flag_error(raw, "unexpected argument"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        if bool_flags.contains(&name) || name.strip_prefix("no-").is_some_and(|n| bool_flags.contains(&n)) {
            let negated = !bool_flags.contains(&name);
            let base = if negated { &name[3..] } else { name };
            let on = match inline {
                None => true,
                Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(other) => return Err(flag_error(raw, format!("bad boolean {other:?}"))),
            };
            out.push((base.to_string(), (on != negated).to_string()));
            continue;
        }
        if !value_flags.contains(&name) {
            return Err(flag_error(raw, "unknown flag"));
        }
        let value = match inline {
            Some(value) => value.to_string(),
            None => {
                let Some(value) = args.get(idx) else {
                    return Err(flag_error(raw, "expected a value"));
                };
                idx += 1;
                value.clone()
            }
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// Parses a Go duration such as `15s`, `500ms`, `1m`, or plain seconds.
pub(crate) fn duration(flag: &str, value: &str) -> Result<std::time::Duration, Error> {
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = value.strip_suffix('m') {
        (m, 60.0)
    } else if let Some(h) = value.strip_suffix('h') {
        (h, 3600.0)
    } else {
        (value, 1.0)
    };
    let number: f64 = number.parse().map_err(|_| flag_error(flag, format!("bad duration {value:?}")))?;
    if !(number.is_finite() && number > 0.0 && number * scale < 1e9) {
        return Err(flag_error(flag, format!("bad duration {value:?}")));
    }
    Ok(std::time::Duration::from_secs_f64(number * scale))
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set); bad escapes stay as they are.
fn decode(text: &str, plus: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'%' if idx + 2 < bytes.len() + 1 && text.is_char_boundary(idx + 1) => {
                let hex = text.get(idx + 1..idx + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    idx += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus => out.push(b' '),
            other => out.push(other),
        }
        idx += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `%XX` escapes of a URL's user or password part.
pub(crate) fn percent_decode(text: &str) -> String {
    decode(text, false)
}

/// The first value of `name` in a URL query string.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| decode(k, true) == name)
        .map(|(_, v)| decode(v, true))
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries() {
        assert_eq!(
            query_param("module=http_2xx&target=http%3A%2F%2Fa%3A1%2F", "target").as_deref(),
            Some("http://a:1/")
        );
        assert_eq!(query_param("target=a+b", "target").as_deref(), Some("a b"));
        assert_eq!(query_param("target", "target").as_deref(), Some(""));
        assert_eq!(query_param("x=1", "target"), None);
        assert_eq!(percent_decode("p%40ss%zz%"), "p@ss%zz%");
        assert_eq!(percent_decode("é%"), "é%");
    }

    use super::*;

    fn check(args: &[&str], expected: Result<&[(&str, &str)], &str>) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let got = parse(&args, &["debug", "set-client-name"], &["redis.addr", "web.listen-address"]);
        match (got, expected) {
            (Ok(got), Ok(want)) => {
                let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
                assert_eq!(got, want, "{args:?}");
            }
            (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{args:?}: {err}"),
            (got, want) => panic!("{args:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn flag_forms() {
        check(&["--redis.addr=redis://a:1"], Ok(&[("redis.addr", "redis://a:1")]));
        check(&["-redis.addr", "x:1"], Ok(&[("redis.addr", "x:1")]));
        check(&["--debug"], Ok(&[("debug", "true")]));
        check(&["--no-set-client-name"], Ok(&[("set-client-name", "false")]));
        check(&["-set-client-name=false"], Ok(&[("set-client-name", "false")]));
        check(&["--no-debug=false"], Ok(&[("debug", "true")]));
        check(&["--debug=maybe"], Err("bad boolean"));
        check(&["--bogus"], Err("unknown flag"));
        check(&["--redis.addr"], Err("expected a value"));
        check(&["plain"], Err("unexpected argument"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("f", "15s").unwrap(), std::time::Duration::from_secs(15));
        assert_eq!(duration("f", "500ms").unwrap(), std::time::Duration::from_millis(500));
        assert_eq!(duration("f", "2").unwrap(), std::time::Duration::from_secs(2));
        assert!(duration("f", "-1s").is_err());
        assert!(duration("f", "xs").is_err());
    }
}
