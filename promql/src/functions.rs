//! The table of PromQL functions (Prometheus 3.14), with argument and return types.

use crate::ast::ExprType::{self, Matrix as M, Scalar as S, String as Str, Vector as V};

/// A PromQL function: its name, signature and whether it is experimental.
///
/// `variadic` follows Prometheus: `0` means exactly `arg_types.len()` arguments; `n > 0`
/// means the last declared argument may be omitted and up to `n` more of the last type may
/// follow; `-1` means the last type repeats without limit (at least `len - 1` arguments).
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub arg_types: &'static [ExprType],
    pub variadic: i32,
    pub return_type: ExprType,
    /// Rejected unless [`crate::ParseOptions::experimental_functions`] is set.
    pub experimental: bool,
}

const fn f(name: &'static str, arg_types: &'static [ExprType], return_type: ExprType) -> Function {
    Function { name, arg_types, variadic: 0, return_type, experimental: false }
}

const fn var(name: &'static str, arg_types: &'static [ExprType], variadic: i32, ret: ExprType) -> Function {
    Function { name, arg_types, variadic, return_type: ret, experimental: false }
}

const fn exp(name: &'static str, arg_types: &'static [ExprType], variadic: i32, ret: ExprType) -> Function {
    Function { name, arg_types, variadic, return_type: ret, experimental: true }
}

/// `holt_winters`, Prometheus 2's name of `double_exponential_smoothing` (not experimental
/// there), known only under [`crate::ParseOptions::prometheus2`].
pub(crate) static HOLT_WINTERS: Function = f("holt_winters", &[M, S, S], V);

/// Functions added after Prometheus 2.42, unknown under [`crate::ParseOptions::prometheus2`].
pub(crate) fn added_after_v2_42(name: &str) -> bool {
    matches!(
        name,
        "double_exponential_smoothing"
            | "end"
            | "first_over_time"
            | "histogram_avg"
            | "histogram_quantiles"
            | "histogram_stddev"
            | "histogram_stdvar"
            | "info"
            | "mad_over_time"
            | "max_of"
            | "min_of"
            | "range"
            | "sort_by_label"
            | "sort_by_label_desc"
            | "start"
            | "start_timestamp"
            | "step"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
            | "ts_of_max_over_time"
            | "ts_of_min_over_time"
    )
}

/// Every function, sorted by name.
pub static FUNCTIONS: &[Function] = &[
    f("abs", &[V], V),
    f("absent", &[V], V),
    f("absent_over_time", &[M], V),
    f("acos", &[V], V),
    f("acosh", &[V], V),
    f("asin", &[V], V),
    f("asinh", &[V], V),
    f("atan", &[V], V),
    f("atanh", &[V], V),
    f("avg_over_time", &[M], V),
    f("ceil", &[V], V),
    f("changes", &[M], V),
    f("clamp", &[V, S, S], V),
    f("clamp_max", &[V, S], V),
    f("clamp_min", &[V, S], V),
    f("cos", &[V], V),
    f("cosh", &[V], V),
    f("count_over_time", &[M], V),
    var("day_of_month", &[V], 1, V),
    var("day_of_week", &[V], 1, V),
    var("day_of_year", &[V], 1, V),
    var("days_in_month", &[V], 1, V),
    f("deg", &[V], V),
    f("delta", &[M], V),
    f("deriv", &[M], V),
    exp("double_exponential_smoothing", &[M, S, S], 0, V),
    exp("end", &[], 0, S),
    f("exp", &[V], V),
    f("first_over_time", &[M], V),
    f("floor", &[V], V),
    f("histogram_avg", &[V], V),
    f("histogram_count", &[V], V),
    f("histogram_fraction", &[S, S, V], V),
    f("histogram_quantile", &[S, V], V),
    exp("histogram_quantiles", &[V, Str, S, S], 9, V),
    f("histogram_stddev", &[V], V),
    f("histogram_stdvar", &[V], V),
    f("histogram_sum", &[V], V),
    var("hour", &[V], 1, V),
    f("idelta", &[M], V),
    f("increase", &[M], V),
    exp("info", &[V, V], 1, V),
    f("irate", &[M], V),
    var("label_join", &[V, Str, Str, Str], -1, V),
    f("label_replace", &[V, Str, Str, Str, Str], V),
    f("last_over_time", &[M], V),
    f("ln", &[V], V),
    f("log10", &[V], V),
    f("log2", &[V], V),
    exp("mad_over_time", &[M], 0, V),
    exp("max_of", &[S, S], 0, S),
    f("max_over_time", &[M], V),
    exp("min_of", &[S, S], 0, S),
    f("min_over_time", &[M], V),
    var("minute", &[V], 1, V),
    var("month", &[V], 1, V),
    f("pi", &[], S),
    f("predict_linear", &[M, S], V),
    f("present_over_time", &[M], V),
    f("quantile_over_time", &[S, M], V),
    f("rad", &[V], V),
    exp("range", &[], 0, S),
    f("rate", &[M], V),
    f("resets", &[M], V),
    var("round", &[V, S], 1, V),
    f("scalar", &[V], S),
    f("sgn", &[V], V),
    f("sin", &[V], V),
    f("sinh", &[V], V),
    f("sort", &[V], V),
    exp("sort_by_label", &[V, Str], -1, V),
    exp("sort_by_label_desc", &[V, Str], -1, V),
    f("sort_desc", &[V], V),
    f("sqrt", &[V], V),
    exp("start", &[], 0, S),
    exp("start_timestamp", &[V], 0, V),
    f("stddev_over_time", &[M], V),
    f("stdvar_over_time", &[M], V),
    exp("step", &[], 0, S),
    f("sum_over_time", &[M], V),
    f("tan", &[V], V),
    f("tanh", &[V], V),
    f("time", &[], S),
    f("timestamp", &[V], V),
    exp("ts_of_first_over_time", &[M], 0, V),
    exp("ts_of_last_over_time", &[M], 0, V),
    exp("ts_of_max_over_time", &[M], 0, V),
    exp("ts_of_min_over_time", &[M], 0, V),
    f("vector", &[S], V),
    var("year", &[V], 1, V),
];

/// The function called `name` (case-sensitive, as in Prometheus).
pub fn function(name: &str) -> Option<&'static Function> {
    // A `match` on strings compiles to a switch on the length and a few comparisons.
    let index = match name {
        "abs" => 0,
        "absent" => 1,
        "absent_over_time" => 2,
        "acos" => 3,
        "acosh" => 4,
        "asin" => 5,
        "asinh" => 6,
        "atan" => 7,
        "atanh" => 8,
        "avg_over_time" => 9,
        "ceil" => 10,
        "changes" => 11,
        "clamp" => 12,
        "clamp_max" => 13,
        "clamp_min" => 14,
        "cos" => 15,
        "cosh" => 16,
        "count_over_time" => 17,
        "day_of_month" => 18,
        "day_of_week" => 19,
        "day_of_year" => 20,
        "days_in_month" => 21,
        "deg" => 22,
        "delta" => 23,
        "deriv" => 24,
        "double_exponential_smoothing" => 25,
        "end" => 26,
        "exp" => 27,
        "first_over_time" => 28,
        "floor" => 29,
        "histogram_avg" => 30,
        "histogram_count" => 31,
        "histogram_fraction" => 32,
        "histogram_quantile" => 33,
        "histogram_quantiles" => 34,
        "histogram_stddev" => 35,
        "histogram_stdvar" => 36,
        "histogram_sum" => 37,
        "hour" => 38,
        "idelta" => 39,
        "increase" => 40,
        "info" => 41,
        "irate" => 42,
        "label_join" => 43,
        "label_replace" => 44,
        "last_over_time" => 45,
        "ln" => 46,
        "log10" => 47,
        "log2" => 48,
        "mad_over_time" => 49,
        "max_of" => 50,
        "max_over_time" => 51,
        "min_of" => 52,
        "min_over_time" => 53,
        "minute" => 54,
        "month" => 55,
        "pi" => 56,
        "predict_linear" => 57,
        "present_over_time" => 58,
        "quantile_over_time" => 59,
        "rad" => 60,
        "range" => 61,
        "rate" => 62,
        "resets" => 63,
        "round" => 64,
        "scalar" => 65,
        "sgn" => 66,
        "sin" => 67,
        "sinh" => 68,
        "sort" => 69,
        "sort_by_label" => 70,
        "sort_by_label_desc" => 71,
        "sort_desc" => 72,
        "sqrt" => 73,
        "start" => 74,
        "start_timestamp" => 75,
        "stddev_over_time" => 76,
        "stdvar_over_time" => 77,
        "step" => 78,
        "sum_over_time" => 79,
        "tan" => 80,
        "tanh" => 81,
        "time" => 82,
        "timestamp" => 83,
        "ts_of_first_over_time" => 84,
        "ts_of_last_over_time" => 85,
        "ts_of_max_over_time" => 86,
        "ts_of_min_over_time" => 87,
        "vector" => 88,
        "year" => 89,
        _ => return None,
    };
    FUNCTIONS.get(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(FUNCTIONS.iter().all(|f| function(f.name) == Some(f)));
        assert_eq!(FUNCTIONS.len(), 90);
        assert_eq!(function("rate").unwrap().arg_types, &[M]);
        assert!(function("holt_winters").is_none());
        assert!(function("RATE").is_none());
    }
}
