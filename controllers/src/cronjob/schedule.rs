//! Cron schedules as Kubernetes reads them (robfig/cron's standard parser): five fields
//! `minute hour day-of-month month day-of-week` with `*`, `?`, values, names (`JAN`-`DEC`,
//! `SUN`-`SAT`), ranges `a-b`, steps `*/n`, `a-b/n`, `a/n` (= `a-max/n`) and lists; the macros
//! `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly` and
//! `@every <duration>`; and an optional `CRON_TZ=<zone>` / `TZ=<zone>` prefix.
//!
//! Day of month and day of week combine as in cron: when both are restricted (neither starts
//! with `*` or `?`), a day matching either runs; otherwise both must match.
//!
//! Times are computed in a time zone on the local wall clock: a time skipped by a DST jump
//! runs right after the jump, a repeated one runs once (the earlier).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Cron(Cron),
    /// `@every`: fixed intervals (whole seconds, at least one) from the previous run.
    Every(SignedDuration),
}

/// The five cron fields as bit sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub minutes: u64,
    pub hours: u64,
    pub days_of_month: u64,
    pub months: u64,
    pub days_of_week: u64,
    /// The field started with `*`/`?` (without a step above 1).
    pub dom_star: bool,
    pub dow_star: bool,
}

/// A schedule and the time zone its `CRON_TZ=`/`TZ=` prefix named, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub schedule: Schedule,
    pub time_zone: Option<String>,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DOM: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[("jan", 1), ("feb", 2), ("mar", 3), ("apr", 4), ("may", 5), ("jun", 6), ("jul", 7), ("aug", 8), ("sep", 9), ("oct", 10), ("nov", 11), ("dec", 12)],
};
const DOW: Bounds = Bounds { min: 0, max: 6, names: &[("sun", 0), ("mon", 1), ("tue", 2), ("wed", 3), ("thu", 4), ("fri", 5), ("sat", 6)] };

/// Parses a schedule.
pub fn parse(spec: &str) -> Result<Parsed, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let (time_zone, rest) = if let Some(r) = spec.strip_prefix("CRON_TZ=").or_else(|| spec.strip_prefix("TZ=")) {
        let (tz, rest) = r.split_once(char::is_whitespace).ok_or_else(|| format!("provided bad spec {spec:?}: missing fields after the time zone"))?;
        (Some(tz.to_string()), rest.trim())
    } else {
        (None, spec)
    };
    let schedule = if let Some(d) = rest.strip_prefix('@') {
        descriptor(d)?
    } else {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("expected exactly 5 fields, found {}: {rest:?}", fields.len()));
        }
        let (minutes, _) = field(fields[0], &MINUTES)?;
        let (hours, _) = field(fields[1], &HOURS)?;
        let (days_of_month, dom_star) = field(fields[2], &DOM)?;
        let (months, _) = field(fields[3], &MONTHS)?;
        let (days_of_week, dow_star) = field(fields[4], &DOW)?;
        Schedule::Cron(Cron { minutes, hours, days_of_month, months, days_of_week, dom_star, dow_star })
    };
    Ok(Parsed { schedule, time_zone })
}

fn descriptor(d: &str) -> Result<Schedule, String> {
    let five = match d {
        "yearly" | "annually" => "0 0 1 1 *",
        "monthly" => "0 0 1 * *",
        "weekly" => "0 0 * * 0",
        "daily" | "midnight" => "0 0 * * *",
        "hourly" => "0 * * * *",
        _ => {
            if let Some(dur) = d.strip_prefix("every ") {
                let dur = go_duration(dur.trim())?;
                // robfig/cron: at least a second, whole seconds.
                let secs = dur.as_secs().max(1);
                return Ok(Schedule::Every(SignedDuration::from_secs(secs)));
            }
            return Err(format!("unrecognized descriptor: @{d}"));
        }
    };
    Ok(parse(five)?.schedule)
}

/// A Go `time.ParseDuration` string (`1h30m`, `90s`, `1.5h`, `300ms`).
fn go_duration(s: &str) -> Result<SignedDuration, String> {
    let bad = || format!("failed to parse duration @every {s}");
    if s.is_empty() {
        return Err(bad());
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(SignedDuration::ZERO);
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        nanos += n * scale;
    }
    if !nanos.is_finite() || nanos > 9.2e18 {
        return Err(bad());
    }
    let d = SignedDuration::from_nanos(nanos as i64);
    Ok(if neg { -d } else { d })
}

fn field(f: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in f.split(',') {
        let (b2, s2) = range(part, b)?;
        bits |= b2;
        star |= s2;
    }
    Ok((bits, star))
}

fn number_or_name(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("failed to parse int from {s}"));
    }
    s.parse::<u32>().map_err(|_| format!("failed to parse int from {s}"))
}

fn range(expr: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let mut slash = expr.split('/');
    let range_part = slash.next().unwrap_or("");
    let step_part = slash.next();
    if slash.next().is_some() {
        return Err(format!("too many slashes: {expr}"));
    }
    let hyphen: Vec<&str> = range_part.split('-').collect();
    let single = hyphen.len() == 1;
    let (start, mut end, mut star) = if hyphen[0] == "*" || hyphen[0] == "?" {
        if !single {
            return Err(format!("too many hyphens: {expr}"));
        }
        (b.min, b.max, true)
    } else {
        let start = number_or_name(hyphen[0], b)?;
        let end = match hyphen.len() {
            1 => start,
            2 => number_or_name(hyphen[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end, false)
    };
    let step = match step_part {
        None => 1,
        Some(st) => {
            let step = number_or_name(st, &Bounds { min: 0, max: 0, names: &[] })?;
            if step == 0 {
                return Err(format!("step of range should be a positive number: {expr}"));
            }
            // `a/n` means `a-max/n`.
            if single && !star {
                end = b.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
    };
    if start < b.min {
        return Err(format!("beginning of range ({start}) below minimum ({}): {expr}", b.min));
    }
    if end > b.max {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    let mut bits = 0u64;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i += step;
    }
    Ok((bits, star))
}

fn has(bits: u64, v: i8) -> bool {
    (0..64).contains(&v) && bits & (1u64 << v) != 0
}

impl Cron {
    fn day_matches(&self, d: Date) -> bool {
        let dom = has(self.days_of_month, d.day());
        let dow = has(self.days_of_week, d.weekday().to_sunday_zero_offset());
        if self.dom_star || self.dow_star { dom && dow } else { dom || dow }
    }

    fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = t.to_zoned(tz.clone()).datetime();
        let mut dt =
            DateTime::new(local.year(), local.month(), local.day(), local.hour(), local.minute(), 0, 0).ok()?.checked_add(SignedDuration::from_mins(1)).ok()?;
        // robfig/cron gives up after five years (e.g. `0 0 30 2 *` never runs).
        let limit = dt.year() as i32 + 5;
        for _ in 0..1_000_000 {
            if dt.year() as i32 > limit {
                return None;
            }
            if !has(self.months, dt.month()) {
                let (y, m) = if dt.month() == 12 { (dt.year().checked_add(1)?, 1) } else { (dt.year(), dt.month() + 1) };
                dt = DateTime::new(y, m, 1, 0, 0, 0, 0).ok()?;
                continue;
            }
            if !self.day_matches(dt.date()) {
                dt = dt.date().tomorrow().ok()?.at(0, 0, 0, 0);
                continue;
            }
            if !has(self.hours, dt.hour()) {
                dt = if dt.hour() == 23 { dt.date().tomorrow().ok()?.at(0, 0, 0, 0) } else { dt.date().at(dt.hour() + 1, 0, 0, 0) };
                continue;
            }
            if !has(self.minutes, dt.minute()) {
                dt = dt.checked_add(SignedDuration::from_mins(1)).ok()?;
                continue;
            }
            let at = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
            if at > t {
                return Some(at);
            }
            dt = dt.checked_add(SignedDuration::from_mins(1)).ok()?;
        }
        None
    }
}

impl Schedule {
    /// The first run strictly after `t`.
    pub fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Cron(c) => c.next_after(t, tz),
            Schedule::Every(d) => Timestamp::from_second(t.as_second()).ok()?.checked_add(*d).ok(),
        }
    }

    /// The latest run in `(earliest, now]`, and how many runs that interval holds (counting
    /// stops at 101: Kubernetes only reports "more than 100").
    pub fn most_recent(&self, earliest: Timestamp, now: Timestamp, tz: &TimeZone) -> (Option<Timestamp>, u64) {
        let Some(first) = self.next_after(earliest, tz).filter(|f| *f <= now) else { return (None, 0) };
        if let Schedule::Every(d) = self {
            let step = d.as_secs().max(1);
            let k = now.duration_since(first).as_secs() / step;
            let last = first.checked_add(SignedDuration::from_secs(k * step)).unwrap_or(first);
            return (Some(last), (k as u64).saturating_add(1).min(101));
        }
        let mut last = first;
        let mut count = 1u64;
        while let Some(n) = self.next_after(last, tz).filter(|n| *n <= now) {
            last = n;
            count += 1;
            if count > 100 {
                return (Some(self.latest_before(last, now, tz)), count);
            }
        }
        (Some(last), count)
    }

    /// The latest run in `[known, now]`, searching back from `now` in growing windows rather
    /// than stepping through every missed run.
    fn latest_before(&self, known: Timestamp, now: Timestamp, tz: &TimeZone) -> Timestamp {
        let mut window = SignedDuration::from_hours(1);
        loop {
            let from = now.checked_sub(window).unwrap_or(known).max(known);
            let mut found = None;
            let mut t = from;
            while let Some(n) = self.next_after(t, tz).filter(|n| *n <= now) {
                found = Some(n);
                t = n;
            }
            if let Some(f) = found {
                return f;
            }
            if from == known {
                return known;
            }
            window = window.checked_mul(4).unwrap_or(SignedDuration::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> Option<String> {
        let p = parse(spec).unwrap();
        p.schedule.next_after(ts(after), &TimeZone::UTC).map(|t| t.to_string())
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-1 * * * *",
            "*/0 * * * *",
            "1-2-3 * * * *",
            "a * * * *",
            "-1 * * * *",
            "* * * FOO *",
            "@fortnightly",
            "@every",
            "@every 5x",
            "1/2/3 * * * *",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn field_bits() {
        let cron = |s: &str| match parse(s).unwrap().schedule {
            Schedule::Cron(c) => c,
            other => panic!("{other:?}"),
        };
        let bits = |v: &[u32]| v.iter().fold(0u64, |b, i| b | 1 << i);
        let cases: &[(&str, u64)] = &[
            ("5 * * * *", bits(&[5])),
            ("1,2,40 * * * *", bits(&[1, 2, 40])),
            ("10-13 * * * *", bits(&[10, 11, 12, 13])),
            ("*/15 * * * *", bits(&[0, 15, 30, 45])),
            ("10-30/10 * * * *", bits(&[10, 20, 30])),
            ("50/5 * * * *", bits(&[50, 55])),
            ("0-5/2,58 * * * *", bits(&[0, 2, 4, 58])),
        ];
        for (spec, want) in cases {
            assert_eq!(cron(spec).minutes, *want, "{spec}");
        }
        assert_eq!(cron("* * * JAN-mar *").months, bits(&[1, 2, 3]));
        assert_eq!(cron("* * * * mon,FRI").days_of_week, bits(&[1, 5]));
        assert!(cron("* * * * *").dom_star);
        assert!(cron("* * ? * 1").dom_star);
        assert!(!cron("* * */2 * 1").dom_star, "a step above one is a restriction");
        assert!(cron("* * */1 * 1").dom_star);
        assert_eq!(parse("CRON_TZ=Asia/Tokyo 0 9 * * *").unwrap().time_zone.as_deref(), Some("Asia/Tokyo"));
        assert_eq!(parse("TZ=UTC @daily").unwrap().schedule, parse("0 0 * * *").unwrap().schedule);
    }

    #[test]
    fn next_run_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("* * * * *", "2024-03-10T10:15:30Z", Some("2024-03-10T10:16:00Z")),
            ("* * * * *", "2024-03-10T10:15:00Z", Some("2024-03-10T10:16:00Z")),
            ("*/15 * * * *", "2024-03-10T10:15:00Z", Some("2024-03-10T10:30:00Z")),
            ("30 9 * * *", "2024-03-10T10:15:00Z", Some("2024-03-11T09:30:00Z")),
            ("0 0 1 * *", "2024-01-31T12:00:00Z", Some("2024-02-01T00:00:00Z")),
            ("0 0 31 * *", "2024-04-01T00:00:00Z", Some("2024-05-31T00:00:00Z")),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", Some("2028-02-29T00:00:00Z")),
            ("0 0 30 2 *", "2024-01-01T00:00:00Z", None),
            ("0 12 * * 1-5", "2024-03-08T13:00:00Z", Some("2024-03-11T12:00:00Z")),
            // Both day fields restricted: either matches (13th, or a Friday).
            ("0 0 13 * 5", "2024-03-01T01:00:00Z", Some("2024-03-08T00:00:00Z")),
            ("0 0 13 * 5", "2024-03-08T01:00:00Z", Some("2024-03-13T00:00:00Z")),
            // Day of month starred: both must match (every Friday).
            ("0 0 * * 5", "2024-03-08T01:00:00Z", Some("2024-03-15T00:00:00Z")),
            ("0 0 */1 * 5", "2024-03-08T01:00:00Z", Some("2024-03-15T00:00:00Z")),
            ("@hourly", "2024-03-10T10:15:00Z", Some("2024-03-10T11:00:00Z")),
            ("@daily", "2024-03-10T10:15:00Z", Some("2024-03-11T00:00:00Z")),
            ("@weekly", "2024-03-10T10:15:00Z", Some("2024-03-17T00:00:00Z")),
            ("@monthly", "2024-03-10T10:15:00Z", Some("2024-04-01T00:00:00Z")),
            ("@yearly", "2024-03-10T10:15:00Z", Some("2025-01-01T00:00:00Z")),
            ("@annually", "2024-12-31T23:59:59Z", Some("2025-01-01T00:00:00Z")),
            ("@every 90s", "2024-03-10T10:15:00.500Z", Some("2024-03-10T10:16:30Z")),
            ("@every 1h30m", "2024-03-10T10:15:00Z", Some("2024-03-10T11:45:00Z")),
        ];
        for (spec, after, want) in cases {
            assert_eq!(next(spec, after).as_deref(), *want, "{spec} after {after}");
        }
    }

    #[test]
    fn time_zones() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let s = parse("30 9 * * *").unwrap().schedule;
        // 09:30 EST is 14:30 UTC; after the DST change it is 13:30 UTC.
        assert_eq!(s.next_after(ts("2024-03-08T00:00:00Z"), &tz), Some(ts("2024-03-08T14:30:00Z")));
        assert_eq!(s.next_after(ts("2024-03-11T00:00:00Z"), &tz), Some(ts("2024-03-11T13:30:00Z")));
        // 02:30 does not exist on 2024-03-10 in New York: it runs right after the jump.
        let s = parse("30 2 * * *").unwrap().schedule;
        assert_eq!(s.next_after(ts("2024-03-10T05:00:00Z"), &tz), Some(ts("2024-03-10T07:30:00Z")));
        let fixed = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(parse("0 0 * * *").unwrap().schedule.next_after(ts("2024-03-10T05:00:00Z"), &fixed), Some(ts("2024-03-10T22:00:00Z")));
    }

    #[test]
    fn most_recent_table() {
        let utc = TimeZone::UTC;
        let cases: &[(&str, &str, &str, Option<&str>, u64)] = &[
            ("*/5 * * * *", "2024-03-10T10:00:00Z", "2024-03-10T10:04:59Z", None, 0),
            ("*/5 * * * *", "2024-03-10T10:00:00Z", "2024-03-10T10:05:00Z", Some("2024-03-10T10:05:00Z"), 1),
            ("*/5 * * * *", "2024-03-10T10:00:00Z", "2024-03-10T10:17:00Z", Some("2024-03-10T10:15:00Z"), 3),
            ("* * * * *", "2024-03-10T10:00:00Z", "2024-03-11T10:00:30Z", Some("2024-03-11T10:00:00Z"), 101),
            ("@every 10m", "2024-03-10T10:00:00Z", "2024-03-10T10:35:00Z", Some("2024-03-10T10:30:00Z"), 3),
        ];
        for (spec, earliest, now, want, missed) in cases {
            let s = parse(spec).unwrap().schedule;
            let (got, n) = s.most_recent(ts(earliest), ts(now), &utc);
            assert_eq!(got.map(|t| t.to_string()).as_deref(), *want, "{spec} {earliest}..{now}");
            assert_eq!(n, *missed, "{spec} {earliest}..{now}");
        }
    }
}
