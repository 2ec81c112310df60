//! Kubernetes resource quantities (`k8s.io/apimachinery/pkg/api/resource.Quantity`): parsing
//! with the same grammar and errors, exact comparison, and the canonical string form Kubernetes
//! prints (`0.5` → `500m`, `1.5Gi` → `1536Mi`, `1000m` → `1`).
//!
//! ```text
//! <quantity> ::= <signedNumber><suffix>
//! <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E | (e|E)<signedInt>
//! ```

use std::cmp::Ordering;
use std::fmt;

/// The error Kubernetes returns for a malformed quantity (`ErrFormatWrong`).
pub const ERR_FORMAT_WRONG: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// The error for a well-formed quantity that does not fit (`ErrNumeric`).
pub const ERR_NUMERIC: &str = "unable to parse numeric value";

/// How a quantity is written, which decides its canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// An exact quantity: `mantissa × 10^exp10`, rounded up to nano units like Kubernetes does.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    mantissa: i128,
    exp10: i32,
    pub format: Format,
}

fn split_number(s: &str) -> Result<(bool, String, String, String), &'static str> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut positive = true;
    if let Some(&c) = b.first() {
        if c == b'-' {
            positive = false;
            pos += 1;
        } else if c == b'+' {
            pos += 1;
        }
    }
    while pos < b.len() && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= b.len() {
        return Ok((positive, "0".into(), String::new(), String::new()));
    }
    let start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = s[start..pos].to_string();
    if num.is_empty() {
        num = "0".into();
    }
    let mut denom = String::new();
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let ds = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = s[ds..pos].to_string();
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < b.len() {
        return Err(ERR_FORMAT_WRONG);
    }
    Ok((positive, num, denom, s[suffix_start..].to_string()))
}

/// (base, exponent, format) of a suffix, as `suffixHandler.interpret`.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = dec {
        return Some((10, e, Format::DecimalSI));
    }
    let bin = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = bin {
        return Some((2, e, Format::BinarySI));
    }
    if suffix.len() > 1 && (suffix.starts_with('e') || suffix.starts_with('E')) {
        let e: i64 = suffix[1..].parse().ok()?;
        return Some((10, i32::try_from(e).ok()?, Format::DecimalExponent));
    }
    None
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Quantity {
    /// `resource.ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        if s.is_empty() {
            return Err(ERR_FORMAT_WRONG.to_string());
        }
        let (positive, num, denom, suffix) = split_number(s).map_err(str::to_string)?;
        let (base, exponent, mut format) = interpret_suffix(&suffix).ok_or_else(|| ERR_FORMAT_WRONG.to_string())?;
        let digits = format!("{num}{denom}");
        let digits = digits.trim_start_matches('0');
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else if digits.len() > 36 {
            return Err(ERR_NUMERIC.to_string());
        } else {
            digits.parse().map_err(|_| ERR_NUMERIC.to_string())?
        };
        let mut exp10 = -(denom.len() as i32);
        if base == 10 {
            exp10 = exp10.checked_add(exponent).ok_or_else(|| ERR_NUMERIC.to_string())?;
        } else {
            mantissa = mantissa.checked_mul(1i128 << exponent).ok_or_else(|| ERR_NUMERIC.to_string())?;
        }
        // Non-zero amounts below one nano round up to it ("if you want some resources, you
        // should get some"), like Kubernetes.
        if mantissa != 0 && exp10 < -9 {
            let shift = (-9 - exp10) as u32;
            match pow10(shift) {
                Some(d) => mantissa = mantissa / d + if mantissa % d != 0 { 1 } else { 0 },
                None => mantissa = 1,
            }
            exp10 = -9;
        }
        if format == Format::BinarySI {
            let q = Quantity { mantissa, exp10, format };
            // BinarySI is capped at the int64 maximum; values in (0, 1) print as DecimalSI.
            if q.cmp(&Quantity::from_int(i64::MAX as i128)) == Ordering::Greater {
                mantissa = i64::MAX as i128;
                exp10 = 0;
            }
            if q.cmp(&Quantity::from_int(1)) == Ordering::Less && mantissa != 0 {
                format = Format::DecimalSI;
            }
        }
        if !positive {
            mantissa = -mantissa;
        }
        Ok(Quantity { mantissa, exp10, format }.normalized())
    }

    pub fn from_int(v: i128) -> Quantity {
        Quantity { mantissa: v, exp10: 0, format: Format::DecimalSI }.normalized()
    }

    fn normalized(mut self) -> Quantity {
        if self.mantissa == 0 {
            self.exp10 = 0;
            return self;
        }
        while self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exp10 += 1;
        }
        self
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        self.mantissa.signum() as i32
    }

    /// Whether the value is a whole number (`MilliValue() % 1000 == 0`).
    pub fn is_integer(&self) -> bool {
        self.exp10 >= 0 || self.mantissa == 0
    }

    /// An approximation, for ratios.
    pub fn as_f64(&self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exp10)
    }

    /// The integer value when it is whole and fits.
    pub fn as_i128(&self) -> Option<i128> {
        if self.exp10 < 0 {
            return None;
        }
        self.mantissa.checked_mul(pow10(self.exp10 as u32)?)
    }

    /// The canonical form (`Quantity.String()`).
    pub fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            let small = self.cmp(&Quantity::from_int(-1024)) == Ordering::Greater
                && self.cmp(&Quantity::from_int(1024)) == Ordering::Less;
            match self.as_i128() {
                Some(mut v) if !small => {
                    let mut exp = 0;
                    while v % 1024 == 0 && exp < 6 {
                        v /= 1024;
                        exp += 1;
                    }
                    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
                    return format!("{v}{suffix}");
                }
                _ => format = Format::DecimalSI,
            }
        }
        let mut m = self.mantissa;
        let mut e = self.exp10;
        // Exponents are multiples of three so that an SI suffix exists.
        let r = e.rem_euclid(3);
        if r != 0 {
            match m.checked_mul(10i128.pow(r as u32)) {
                Some(v) => {
                    m = v;
                    e -= r;
                }
                None => return format!("{}e{}", self.mantissa, self.exp10),
            }
        }
        let suffix = match (format, e) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{m}{suffix}")
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    /// Exact comparison (falls back to floating point only beyond 10^38).
    fn cmp(&self, other: &Quantity) -> Ordering {
        let (a, b) = (self, other);
        if a.mantissa.signum() != b.mantissa.signum() {
            return a.mantissa.signum().cmp(&b.mantissa.signum());
        }
        let e = a.exp10.min(b.exp10);
        let scale = |q: &Quantity| pow10((q.exp10 - e) as u32).and_then(|p| q.mantissa.checked_mul(p));
        match (scale(a), scale(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.as_f64().partial_cmp(&b.as_f64()).unwrap_or(Ordering::Equal),
        }
    }

}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// A quantity from JSON, where it is normally a string but a bare number is also accepted.
pub(crate) fn from_json(v: &serde_json::Value) -> Result<Quantity, String> {
    match v {
        serde_json::Value::String(s) => Quantity::parse(s),
        serde_json::Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => Err(ERR_FORMAT_WRONG.to_string()),
    }
}
