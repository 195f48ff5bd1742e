//! Go's number formatting: `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`), and the
//! `fmt` verbs templates use (`%v %s %d %f %e %g %q %x %%` with flags, width and precision).

/// Decimal digits of a finite, non-zero `|v|`: `0.d1d2d3… × 10^dp`, no trailing zeros.
struct Digits {
    neg: bool,
    digits: Vec<u8>,
    dp: i32,
}

/// `prec` significant digits, or the shortest round-trip digits when `None`.
fn digits(v: f64, prec: Option<usize>) -> Digits {
    let neg = v.is_sign_negative();
    let s = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    Digits { neg, digits, dp: exp + 1 }
}

fn push_exp(out: &mut String, e: char, exp: i32) {
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
}

/// `%e` from digits with `prec` digits after the point.
fn fmt_e(d: &Digits, prec: usize, e: char) -> String {
    let mut out = String::new();
    if d.neg {
        out.push('-');
    }
    let first = if d.digits[0] == b'0' && d.digits.len() == 1 { b'0' } else { d.digits[0] };
    out.push(first as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(*d.digits.get(i).unwrap_or(&b'0') as char);
        }
    }
    let exp = if d.digits == [b'0'] { 0 } else { d.dp - 1 };
    push_exp(&mut out, e, exp);
    out
}

/// `%f` from digits with `prec` digits after the point.
fn fmt_f(d: &Digits, prec: usize) -> String {
    let mut out = String::new();
    if d.neg {
        out.push('-');
    }
    let digit = |i: i32| -> char {
        if i < 0 {
            '0'
        } else {
            *d.digits.get(i as usize).unwrap_or(&b'0') as char
        }
    };
    if d.dp > 0 {
        for i in 0..d.dp {
            out.push(digit(i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            out.push(digit(d.dp + i));
        }
    }
    out
}

fn special(v: f64, plus: bool) -> Option<String> {
    if v.is_nan() {
        return Some("NaN".into());
    }
    if v.is_infinite() {
        return Some(if v > 0.0 { "+Inf".into() } else { "-Inf".into() });
    }
    let _ = plus;
    None
}

/// Go's `%g` with an optional precision (`%v` is `%g` with none: the shortest form).
pub fn format_g(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v, false) {
        return s;
    }
    if v == 0.0 {
        let mut s = if v.is_sign_negative() { "-0".to_string() } else { "0".to_string() };
        if let Some(p) = prec {
            // %g never prints trailing zeros.
            let _ = p;
        }
        s.truncate(s.len());
        return s;
    }
    let d = digits(v, prec.map(|p| p.max(1)));
    let nd = d.digits.len() as i32;
    let mut eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            if p > nd && nd >= d.dp {
                nd
            } else {
                p
            }
        }
    };
    if prec.is_none() {
        eprec = 6;
    }
    let exp = d.dp - 1;
    if exp < -4 || exp >= eprec {
        return fmt_e(&d, (nd - 1).max(0) as usize, 'e');
    }
    fmt_f(&d, (nd - d.dp).max(0) as usize)
}

/// Go's `%v` of a float64.
pub fn format_float(v: f64) -> String {
    format_g(v, None)
}

/// `strconv.FormatFloat(v, 'E', -1, 64)`: shortest digits, always an exponent (`2.2E+01`).
pub fn format_e_shortest(v: f64) -> String {
    if let Some(s) = special(v, false) {
        return s;
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0E+00".into() } else { "0E+00".into() };
    }
    let d = digits(v, None);
    fmt_e(&d, d.digits.len() - 1, 'E')
}

/// Go's `%e` with a precision (default 6).
pub fn format_e(v: f64, prec: usize) -> String {
    if let Some(s) = special(v, false) {
        return s;
    }
    let d = if v == 0.0 {
        Digits { neg: v.is_sign_negative(), digits: vec![b'0'], dp: 1 }
    } else {
        digits(v, Some(prec + 1))
    };
    fmt_e(&d, prec, 'e')
}

/// Go's `%f` with a precision (default 6).
pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v, false) {
        return s;
    }
    format!("{:.*}", prec, v)
}

/// One argument of [`sprintf`].
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Anything else, already printed as `%v` would.
    Other(String),
}

impl Arg {
    fn as_v(&self) -> String {
        match self {
            Arg::Int(i) => i.to_string(),
            Arg::Float(f) => format_float(*f),
            Arg::Str(s) | Arg::Other(s) => s.clone(),
            Arg::Bool(b) => b.to_string(),
        }
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub fn sprintf(format: &str, args: &[Arg]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) = (false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut width: Option<usize> = None;
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width = Some(width.unwrap_or(0).saturating_mul(10).saturating_add(d as usize - '0' as usize).min(1000));
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            prec = Some(0);
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                prec = Some(prec.unwrap_or(0).saturating_mul(10).saturating_add(d as usize - '0' as usize).min(1000));
                chars.next();
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        let mut numeric = false;
        let body = match (verb, arg) {
            ('v', a) => a.as_v(),
            ('s', Arg::Str(s)) => s.clone(),
            ('s', Arg::Float(f)) => format!("%!s(float64={})", format_float(*f)),
            ('s', Arg::Int(i)) => format!("%!s(int={i})"),
            ('s', a) => a.as_v(),
            ('q', Arg::Str(s)) => sextant_model::go_quote(s),
            ('d', Arg::Int(i)) => {
                numeric = true;
                i.to_string()
            }
            ('d', Arg::Float(f)) => format!("%!d(float64={})", format_float(*f)),
            ('t', Arg::Bool(b)) => b.to_string(),
            ('x', Arg::Int(i)) => {
                numeric = true;
                if *i < 0 {
                    format!("-{:x}", i.unsigned_abs())
                } else {
                    format!("{i:x}")
                }
            }
            ('X', Arg::Int(i)) => {
                numeric = true;
                if *i < 0 {
                    format!("-{:X}", i.unsigned_abs())
                } else {
                    format!("{i:X}")
                }
            }
            ('o', Arg::Int(i)) => {
                numeric = true;
                if *i < 0 {
                    format!("-{:o}", i.unsigned_abs())
                } else {
                    format!("{i:o}")
                }
            }
            ('b', Arg::Int(i)) => {
                numeric = true;
                if *i < 0 {
                    format!("-{:b}", i.unsigned_abs())
                } else {
                    format!("{i:b}")
                }
            }
            ('c', Arg::Int(i)) => char::from_u32(*i as u32).unwrap_or('\u{FFFD}').to_string(),
            ('E', Arg::Float(f)) => {
                numeric = true;
                format_e(*f, prec.unwrap_or(6)).replace('e', "E")
            }
            ('G', Arg::Float(f)) => {
                numeric = true;
                format_g(*f, prec).replace('e', "E")
            }
            ('x', Arg::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('X', Arg::Str(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
            ('f' | 'F', Arg::Float(f)) => {
                numeric = true;
                format_f(*f, prec.unwrap_or(6))
            }
            ('e', Arg::Float(f)) => {
                numeric = true;
                format_e(*f, prec.unwrap_or(6))
            }
            ('g', Arg::Float(f)) => {
                numeric = true;
                format_g(*f, prec)
            }
            (v, Arg::Int(i)) => format!("%!{v}(int={i})"),
            (v, Arg::Float(f)) => format!("%!{v}(float64={})", format_float(*f)),
            (v, Arg::Str(s)) => format!("%!{v}(string={s})"),
            (v, Arg::Bool(b)) => format!("%!{v}(bool={b})"),
            (v, Arg::Other(s)) => format!("%!{v}({s})"),
        };
        let _ = sharp;
        let mut body = body;
        let body_is_num = numeric || matches!((verb, arg), ('v', Arg::Int(_) | Arg::Float(_)));
        if body_is_num && !body.starts_with('-') && !body.starts_with('+') {
            if plus {
                body.insert(0, '+');
            } else if space {
                body.insert(0, ' ');
            }
        }
        if matches!(verb, 's' | 'q') {
            if let Some(p) = prec.filter(|_| verb == 's') {
                body = body.chars().take(p).collect();
            }
        }
        let len = body.chars().count();
        let w = width.unwrap_or(0);
        if len < w {
            let pad = w - len;
            if minus {
                body.push_str(&" ".repeat(pad));
            } else if zero && body_is_num && body.chars().all(|c| c != 'N' && c != 'I') {
                let sign = if body.starts_with(['-', '+', ' ']) { body.remove(0).to_string() } else { String::new() };
                body = format!("{sign}{}{body}", "0".repeat(pad));
            } else {
                body = format!("{}{body}", " ".repeat(pad));
            }
        }
        out.push_str(&body);
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| match a {
                Arg::Int(i) => format!("int={i}"),
                Arg::Float(f) => format!("float64={}", format_float(*f)),
                Arg::Str(s) => format!("string={s}"),
                Arg::Bool(b) => format!("bool={b}"),
                Arg::Other(s) => s.clone(),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_v() {
        let cases = [
            (100.0, "100"),
            (3600.0, "3600"),
            (999999.0, "999999"),
            (123456.7, "123456.7"),
            (1e6, "1e+06"),
            (1234567.891, "1.234567891e+06"),
            (-2500000.5, "-2.5000005e+06"),
            (0.5, "0.5"),
            (0.0001234, "0.0001234"),
            (0.00001234, "1.234e-05"),
            (1e21, "1e+21"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float(v), want, "{v}");
        }
    }

    #[test]
    fn printf_verbs() {
        let cases: Vec<(&str, Vec<Arg>, &str)> = vec![
            ("%.4g", vec![Arg::Float(1.234567891)], "1.235"),
            ("%.4g", vec![Arg::Float(500.0)], "500"),
            ("%.4g", vec![Arg::Float(123456789.1)], "1.235e+08"),
            ("%.4g", vec![Arg::Float(0.0)], "0"),
            ("%.2f", vec![Arg::Float(1234567.891)], "1234567.89"),
            ("%5.1f|%-5d|%05d", vec![Arg::Float(2.25), Arg::Int(3), Arg::Int(-4)], "  2.2|3    |-0004"),
            ("%s=%q", vec![Arg::Str("a".into()), Arg::Str("b\"".into())], "a=\"b\\\"\""),
            ("%d%%", vec![Arg::Int(5)], "5%"),
            ("%e", vec![Arg::Float(1234.5)], "1.234500e+03"),
            ("%d", vec![], "%!d(MISSING)"),
        ];
        for (f, args, want) in cases {
            assert_eq!(sprintf(f, &args), want, "{f}");
        }
    }
}
