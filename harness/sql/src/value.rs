//! Result values with the comparison semantics of Python's `sqlite3` rows, because both reference
//! evaluators (DeepRetrieval's and the official Spider one) compare Python tuples: `1 == 1.0`,
//! `None == None`, `str != bytes`, and sets/dicts hash consistently with that equality.
use std::fmt::Write as _;

/// One SQLite result value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A value's equality class: two values are equal in Python iff their keys are equal. Integral
/// reals inside the i64 range fold into `Int` (Python compares int and float exactly); `-0.0`
/// folds into `Int(0)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueKey {
    Null,
    Int(i64),
    Float(u64),
    Text(String),
    Blob(Vec<u8>),
}

/// A row's equality class.
pub type RowKey = Vec<ValueKey>;

const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

impl Value {
    /// The equality class of this value.
    pub fn key(&self) -> ValueKey {
        match self {
            Value::Null => ValueKey::Null,
            Value::Integer(i) => ValueKey::Int(*i),
            Value::Real(f) => {
                if f.fract() == 0.0 && *f >= -TWO_POW_63 && *f < TWO_POW_63 {
                    ValueKey::Int(*f as i64)
                } else {
                    ValueKey::Float(f.to_bits())
                }
            }
            Value::Text(s) => ValueKey::Text(s.clone()),
            Value::Blob(b) => ValueKey::Blob(b.clone()),
        }
    }

    /// `str(x) + str(type(x))` in Python: the sort key the official evaluator uses to put each
    /// row's values in a canonical order before its quick rejection test.
    pub fn python_sort_key(&self) -> String {
        match self {
            Value::Null => "None<class 'NoneType'>".to_string(),
            Value::Integer(i) => format!("{i}<class 'int'>"),
            Value::Real(f) => format!("{}<class 'float'>", python_float_repr(*f)),
            Value::Text(s) => format!("{s}<class 'str'>"),
            Value::Blob(b) => format!("{}<class 'bytes'>", python_bytes_repr(b)),
        }
    }

    /// Text for people (verdict files): SQL-ish rendering, never lossy for numbers.
    pub fn display(&self) -> String {
        match self {
            Value::Null => "NULL".to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Real(f) => python_float_repr(*f),
            Value::Text(s) => s.clone(),
            Value::Blob(b) => python_bytes_repr(b),
        }
    }
}

/// The key of a whole row.
pub fn row_key(row: &[Value]) -> RowKey {
    row.iter().map(Value::key).collect()
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation when the decimal
/// exponent is below -4 or at least 16.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".to_string() } else { "-inf".to_string() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".to_string() } else { "0.0".to_string() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits too, as "d.ddde<exp>".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// Python's `repr(bytes)`.
pub fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') { '"' } else { '\'' };
    let mut out = String::from("b");
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\'' if quote == '\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Expected strings are what CPython 3 prints for repr().
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (100.0, "100.0"),
            (1e100, "1e+100"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0.0"),
            (3.14159, "3.14159"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn bytes_repr_matches_python() {
        assert_eq!(python_bytes_repr(b"ab"), "b'ab'");
        assert_eq!(python_bytes_repr(b"a'b"), "b\"a'b\"");
        assert_eq!(python_bytes_repr(b"a'\"b"), "b'a\\'\"b'");
        assert_eq!(python_bytes_repr(&[0, 255, b'\n']), "b'\\x00\\xff\\n'");
    }

    #[test]
    fn keys_follow_python_equality() {
        assert_eq!(Value::Integer(1).key(), Value::Real(1.0).key());
        assert_ne!(Value::Integer(1).key(), Value::Real(1.5).key());
        assert_eq!(Value::Real(-0.0).key(), Value::Integer(0).key());
        assert_ne!(Value::Text("1".into()).key(), Value::Integer(1).key());
        assert_ne!(Value::Text("a".into()).key(), Value::Blob(b"a".to_vec()).key());
        // 2^53 + 1 is not representable as f64: Python says 9007199254740993 != 9007199254740992.0.
        assert_ne!(Value::Integer(9_007_199_254_740_993).key(), Value::Real(9_007_199_254_740_992.0).key());
        assert_eq!(Value::Integer(9_007_199_254_740_992).key(), Value::Real(9_007_199_254_740_992.0).key());
        // Out of i64 range: cannot equal any SQLite integer.
        assert_eq!(Value::Real(1e19).key(), ValueKey::Float(1e19f64.to_bits()));
    }
}
