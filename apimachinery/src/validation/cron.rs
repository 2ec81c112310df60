//! Cron schedules as `github.com/robfig/cron/v3`'s `ParseStandard` reads them (five fields or
//! a descriptor), with its error messages, and CronJob time zones.

use serde_json::Value;

use super::path::{Errs, Path, invalid};

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DOM: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds { min: 1, max: 12, names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] };
const DOW: Bounds = Bounds { min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

/// Go's `strconv.Atoi` error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", super::go_quote(s)));
    }
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", super::go_quote(s)))
}

fn must_parse_int(expr: &str) -> Result<u32, String> {
    let n = atoi(expr).map_err(|e| format!("failed to parse int from {expr}: {e}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n.min(u32::MAX as i64) as u32)
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if b.names.len() == 12 { 1 } else { 0 });
    }
    must_parse_int(expr)
}

fn get_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = b.min;
        end = b.max;
    } else {
        start = parse_int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => parse_int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            s
        }
        _ => return Err(format!("too many slashes: {expr}")),
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
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn get_field(field: &str, b: &Bounds) -> Result<(), String> {
    field.split(',').filter(|r| !r.is_empty()).try_for_each(|r| get_range(r, b))
}

/// Whether Go's `time.ParseDuration` accepts `s`, with its error text.
fn parse_go_duration(s: &str) -> Result<(), String> {
    let orig = s;
    let quoted = super::go_quote(orig);
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(format!("time: invalid duration {quoted}"));
    }
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        if num_len == 0 || rest[..num_len] == *"." {
            return Err(format!("time: invalid duration {quoted}"));
        }
        rest = &rest[num_len..];
        let unit_len = rest.bytes().take_while(|c| !c.is_ascii_digit() && *c != b'.').count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {quoted}"));
        }
        let unit = &rest[..unit_len];
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit) {
            return Err(format!("time: unknown unit {} in duration {quoted}", super::go_quote(unit)));
        }
        rest = &rest[unit_len..];
    }
    Ok(())
}

/// Go's `time.LoadLocation`, as far as the local zone database can tell.
pub(crate) fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    let db = jiff::tz::db();
    // Without a zone database every zone would look unknown; accept rather than reject all.
    if db.available().next().is_none() || db.get(name).is_ok() {
        Ok(())
    } else {
        Err(format!("unknown time zone {name}"))
    }
}

/// `cron.ParseStandard`.
pub(crate) fn parse_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let end = spec.find(' ').unwrap_or(spec.len());
        let loc = &spec[eq + 1..end];
        load_location(loc).map_err(|e| format!("provided bad location {loc}: {e}"))?;
        spec = spec[end..].trim();
    }
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => Ok(()),
            s if s.starts_with("@every ") => parse_go_duration(&s[7..]).map_err(|e| format!("failed to parse duration {s}: {e}")),
            s => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    get_field(fields[0], &MINUTES)?;
    get_field(fields[1], &HOURS)?;
    get_field(fields[2], &DOM)?;
    get_field(fields[3], &MONTHS)?;
    get_field(fields[4], &DOW)?;
    Ok(())
}

/// `validateScheduleFormat`: TZ in the schedule is only tolerated on objects that already had it.
pub(crate) fn schedule_format(schedule: &str, allow_tz_in_schedule: bool, has_time_zone: bool, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if let Err(e) = parse_standard(schedule) {
        errs.push(invalid(p, schedule, e));
    }
    if schedule.contains("TZ") {
        if allow_tz_in_schedule && has_time_zone {
            errs.push(invalid(p, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"));
        } else if !allow_tz_in_schedule {
            errs.push(invalid(p, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
        }
    }
    errs
}

/// `validateTimeZone`.
pub(crate) fn time_zone(tz: &Value, p: &Path) -> Errs {
    let Some(name) = tz.as_str() else { return Vec::new() };
    if name.is_empty() {
        return vec![invalid(p, name, "timeZone must be nil or non-empty string")];
    }
    let part_ok = |part: &str| {
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part.bytes().all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    if !name.split('/').all(part_ok) {
        return vec![invalid(p, name, format!("unknown time zone {name}"))];
    }
    let mut errs = Vec::new();
    if name.eq_ignore_ascii_case("Local") {
        errs.push(invalid(p, name, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"));
    }
    if let Err(e) = load_location(name) {
        errs.push(invalid(p, name, e));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robfig_messages() {
        assert_eq!(parse_standard("*/5 * * * *"), Ok(()));
        assert_eq!(parse_standard("@hourly"), Ok(()));
        assert_eq!(parse_standard("@every 1h30m"), Ok(()));
        assert_eq!(parse_standard("0 0 * * mon-fri"), Ok(()));
        assert_eq!(parse_standard("* * * *"), Err("expected exactly 4 fields, found 4: [* * * *]".replace("exactly 4", "exactly 5")));
        assert_eq!(parse_standard("61 * * * *"), Err("end of range (61) above maximum (59): 61".to_string()));
        assert_eq!(parse_standard("@fortnightly"), Err("unrecognized descriptor: @fortnightly".to_string()));
        assert_eq!(
            parse_standard("x * * * *"),
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax".to_string())
        );
        assert_eq!(parse_standard("@every 5"), Err("failed to parse duration @every 5: time: missing unit in duration \"5\"".to_string()));
    }
}
