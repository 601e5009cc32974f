//! `heldar schedule add | list | show | edit | preview | rm`: snapshot schedules of a running
//! Heldar (`/api/v1/cameras/{id}/snapshot-schedules`, `/api/v1/snapshot-schedules/{id}`), with
//! their calendar (docs/schedules.md): `--tz`, `--align`, `--at`, `--weekdays`, `--from`/`--to`,
//! `--daylight`. The flags are turned into the API's fields and nothing else: the server checks
//! them, and its 422 sentence is what the command prints. A schedule is shown in words (`every
//! 5m, aligned, Europe/Berlin`, `at 06:00, 12:00 on Mon–Fri`), by the same rule as the dashboard.
//!
//! Intervals are typed as spans (`--every 60s`, `5m`, `1h30m`) and shown the same way. Heldar
//! clamps an interval to 5 s … 1 d; when it did, the command says so on stderr. `list` without a
//! camera asks for every schedule at once (`GET /api/v1/snapshot-schedules`, following its
//! pages) and, from a Heldar without that route (404/405), asks camera by camera instead, so
//! it works against older servers too.

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Map, Value};

use super::client::{self, seg, CliError, CliResult, Client, ClientArgs, Listing};
use super::exit::Exit;
use super::output;
use super::when::{fmt_span, parse_every};

#[derive(Args, Debug)]
pub struct Schedule {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    client: ClientArgs,
}

/// The calendar flags of `add` and `edit` (docs/schedules.md).
#[derive(Args, Debug, Default)]
struct CalendarArgs {
    /// IANA time zone the local times are in (Europe/Berlin, America/New_York) [server default: UTC]
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Put slots on the clock: every 5m at :00, :05, …, every 1h on the hour (in --tz).
    #[arg(long)]
    align: bool,
    /// A fixed local time of day instead of an interval; repeat for more (--at 06:00 --at 18:00).
    #[arg(long, value_name = "HH:MM", conflicts_with_all = ["every", "align"])]
    at: Vec<String>,
    /// Active weekdays, comma-separated: mon,tue,wed,thu,fri (`all`: every day).
    #[arg(long, value_name = "DAYS", value_delimiter = ',')]
    weekdays: Option<Vec<String>>,
    /// Daily window opening, local HH:MM (with --to; may cross midnight: --from 22:00 --to 06:00).
    #[arg(
        long,
        value_name = "HH:MM",
        requires = "to",
        conflicts_with = "daylight"
    )]
    from: Option<String>,
    /// Daily window closing, local HH:MM (with --from).
    #[arg(long, value_name = "HH:MM", requires = "from")]
    to: Option<String>,
    /// Active from sunrise to sunset at a place: LAT,LON[,OFFSET_MIN] (the window opens OFFSET_MIN
    /// minutes before sunrise and closes as many after sunset).
    #[arg(long, value_name = "LAT,LON[,OFFSET_MIN]", allow_hyphen_values = true, value_parser = parse_daylight)]
    daylight: Option<Value>,
}

/// What only `edit` can do: take calendar fields back to their defaults.
#[derive(Args, Debug, Default)]
struct ClearArgs {
    /// Slots no longer on the clock (they keep the phase of the next slot).
    #[arg(long, conflicts_with = "align")]
    no_align: bool,
    /// Active all day again: no --from/--to window, no daylight.
    #[arg(long, conflicts_with_all = ["from", "daylight"])]
    all_day: bool,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Give a camera a schedule: an interval, or fixed times of day (operator).
    Add {
        /// Camera id.
        camera: String,
        /// Time between frames: seconds, or a span such as 60s, 5m, 1h, 1h30m [default: 5m]
        #[arg(long, value_name = "SPAN", value_parser = parse_every)]
        every: Option<i64>,
        /// Create it paused.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        calendar: CalendarArgs,
        #[command(flatten)]
        frames: FrameArgs,
    },
    /// Schedules of one camera, or of all.
    #[command(visible_alias = "ls")]
    List {
        /// Camera id [default: every camera]
        camera: Option<String>,
    },
    /// One schedule: its words, every field, and its next slot.
    Show {
        /// Schedule id (sch_…).
        id: String,
    },
    /// The next slots of a schedule, in its time zone and in UTC.
    Preview {
        /// Schedule id (sch_…).
        id: String,
        /// How many slots, 1 to 100.
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 5)]
        n: u32,
    },
    /// Change a schedule: its interval or times, its calendar, or pause and resume it (operator).
    /// Only what is named changes; --every on a fixed-times schedule makes it an interval one
    /// again, --at on an interval one makes it fixed-times.
    #[command(visible_alias = "set")]
    #[command(group(ArgGroup::new("change").required(true).multiple(true)
        .args(EDIT_IDS)))]
    Edit {
        /// Schedule id (sch_…), as `schedule list` shows it.
        id: String,
        /// New interval: seconds, or a span such as 60s, 5m, 1h.
        #[arg(long, value_name = "SPAN", value_parser = parse_every)]
        every: Option<i64>,
        /// Resume taking frames.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Pause: no frames until --enable.
        #[arg(long)]
        disable: bool,
        #[command(flatten)]
        calendar: CalendarArgs,
        #[command(flatten)]
        clear: ClearArgs,
        #[command(flatten)]
        frames: FrameArgs,
    },
    /// Delete a schedule (its frames stay) (operator).
    #[command(visible_alias = "remove")]
    Rm {
        /// Schedule id.
        id: String,
    },
}

/// `LAT,LON[,OFFSET_MIN]` as the API's `daylight` object; the server checks the ranges.
fn parse_daylight(raw: &str) -> Result<Value, String> {
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    let num = |s: &str, what: &str| {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{what} {s:?} is not a number"))
    };
    match parts.as_slice() {
        [lat, lon] => Ok(json!({"lat": num(lat, "latitude")?, "lon": num(lon, "longitude")?})),
        [lat, lon, off] => {
            let off = off
                .parse::<i64>()
                .map_err(|_| format!("offset {off:?} is not a whole number of minutes"))?;
            Ok(
                json!({"lat": num(lat, "latitude")?, "lon": num(lon, "longitude")?,
                "offset_minutes": off}),
            )
        }
        _ => Err("expected LAT,LON or LAT,LON,OFFSET_MIN, e.g. 52.52,13.40,30".into()),
    }
}

impl CalendarArgs {
    /// The calendar fields named, into `body`. `edit`: a PATCH, where a field that the named one
    /// excludes is cleared (`--at` clears `align`, `--from` clears `daylight`, …) so that a
    /// change of kind is one command.
    fn write(self, body: &mut Map<String, Value>, edit: bool) {
        if let Some(tz) = self.tz {
            body.insert("timezone".into(), json!(tz));
        }
        if self.align {
            body.insert("align".into(), json!(true));
        }
        if !self.at.is_empty() {
            body.insert("at".into(), json!(self.at));
            if edit {
                body.insert("align".into(), Value::Null);
            }
        }
        if let Some(days) = self.weekdays {
            let all = days.len() == 1 && days[0].eq_ignore_ascii_case("all");
            body.insert(
                "weekdays".into(),
                if all { Value::Null } else { json!(days) },
            );
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            body.insert("active_from".into(), json!(from));
            body.insert("active_to".into(), json!(to));
            if edit {
                body.insert("daylight".into(), Value::Null);
            }
        }
        if let Some(d) = self.daylight {
            body.insert("daylight".into(), d);
            if edit {
                body.insert("active_from".into(), Value::Null);
                body.insert("active_to".into(), Value::Null);
            }
        }
    }
}

pub fn run(args: Schedule) -> ExitCode {
    client::run(async move {
        let c = Client::new(&args.client)?;
        match args.action {
            Action::Add {
                camera,
                every,
                disabled,
                calendar,
                frames,
            } => {
                let mut body = frames.body();
                if let Some(e) = every {
                    body.insert("interval_seconds".into(), json!(e));
                }
                if disabled {
                    body.insert("enabled".into(), json!(false));
                }
                calendar.write(&mut body, false);
                let path = format!(
                    "/api/v1/cameras/{}/snapshot-schedules",
                    seg("camera", &camera)?
                );
                let reply = c.post_json(&path, &Value::Object(body)).await?;
                let s: Value = reply.parse()?;
                note_clamp(every, &s);
                if c.json {
                    output::raw_json(&reply.body);
                } else {
                    output::line(format!("added schedule {}", describe(&s)));
                }
                Ok(())
            }
            Action::List { camera } => list(&c, camera.as_deref()).await,
            Action::Show { id } => {
                let path = format!("/api/v1/snapshot-schedules/{}", seg("schedule", &id)?);
                let reply = c.get(&path, &[]).await?;
                if c.json {
                    output::raw_json(&reply.body);
                    return Ok(());
                }
                let s: Value = reply.parse()?;
                output::line(show(&s));
                Ok(())
            }
            Action::Preview { id, n } => {
                let path = format!(
                    "/api/v1/snapshot-schedules/{}/preview",
                    seg("schedule", &id)?
                );
                let reply = c.get(&path, &[("n", n.to_string())]).await?;
                if c.json {
                    output::raw_json(&reply.body);
                    return Ok(());
                }
                let v: Value = reply.parse()?;
                let slots = v["slots"].as_array().cloned().unwrap_or_default();
                if slots.is_empty() {
                    output::line("no slot: the schedule's window does not open within 400 days");
                    return Ok(());
                }
                let mut t =
                    output::table(&[&format!("local ({})", output::text(&v, "timezone")), "UTC"]);
                for (i, slot) in slots.iter().enumerate() {
                    t.add_row(vec![
                        v["local"][i].as_str().unwrap_or("?").to_string(),
                        slot.as_str().unwrap_or("?").to_string(),
                    ]);
                }
                output::line(t.trim_fmt());
                Ok(())
            }
            Action::Edit {
                id,
                every,
                enable,
                disable,
                calendar,
                clear,
                frames,
            } => {
                let mut body = frames.body();
                if let Some(e) = every {
                    body.insert("interval_seconds".into(), json!(e));
                    // An interval replaces fixed times (the server refuses both at once).
                    if calendar.at.is_empty() {
                        body.insert("at".into(), Value::Null);
                    }
                }
                if enable || disable {
                    body.insert("enabled".into(), json!(enable));
                }
                calendar.write(&mut body, true);
                if clear.no_align {
                    body.insert("align".into(), Value::Null);
                }
                if clear.all_day {
                    for k in ["active_from", "active_to", "daylight"] {
                        body.insert(k.into(), Value::Null);
                    }
                }
                let path = format!("/api/v1/snapshot-schedules/{}", seg("schedule", &id)?);
                let reply = c.patch_json(&path, &Value::Object(body)).await?;
                let s: Value = reply.parse()?;
                note_clamp(every, &s);
                if c.json {
                    output::raw_json(&reply.body);
                } else {
                    output::line(format!("changed schedule {}", describe(&s)));
                }
                Ok(())
            }
            Action::Rm { id } => {
                let path = format!("/api/v1/snapshot-schedules/{}", seg("schedule", &id)?);
                c.delete(&path).await?;
                if !c.json {
                    output::line(format!("removed schedule {id}; its frames stay"));
                }
                Ok(())
            }
        }
    })
}

/// Which frames a schedule keeps, where they come from and how long (docs/schedules.md): the
/// flags `add` and `set` share. Each given flag sets its field; `set` leaves the others.
#[derive(Args, Debug)]
struct FrameArgs {
    /// Skip frames darker than --dark-threshold (night).
    #[arg(long, conflicts_with = "no_skip_dark")]
    skip_dark: bool,
    /// Keep dark frames again.
    #[arg(long)]
    no_skip_dark: bool,
    /// Mean luma 0-255 under which a frame is dark, or `default` (16).
    #[arg(long, value_name = "N", value_parser = parse_threshold)]
    dark_threshold: Option<Value>,
    /// Skip frames that look like the previous stored frame.
    #[arg(long, conflicts_with = "no_skip_unchanged")]
    skip_unchanged: bool,
    /// Keep unchanged frames again.
    #[arg(long)]
    no_skip_unchanged: bool,
    /// Take frames from the camera's main stream, sub stream or snapshot URL, or `camera` for
    /// the camera's own choice.
    #[arg(long, value_name = "S", value_parser = ["main", "sub", "snapshot", "camera"])]
    stream: Option<String>,
    /// Keep this schedule's frames H hours instead of the global age limit, or `global`.
    #[arg(long, value_name = "H", value_parser = parse_retention)]
    retention_hours: Option<Value>,
}

/// `edit`'s "something to change" group: its own flags, the calendar's and the frame rules'.
const EDIT_IDS: [&str; 18] = [
    "every",
    "enable",
    "disable",
    "tz",
    "align",
    "at",
    "weekdays",
    "from",
    "daylight",
    "no_align",
    "all_day",
    "skip_dark",
    "no_skip_dark",
    "dark_threshold",
    "skip_unchanged",
    "no_skip_unchanged",
    "stream",
    "retention_hours",
];

impl FrameArgs {
    /// The API fields of the flags given.
    fn body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if self.skip_dark || self.no_skip_dark {
            m.insert("skip_dark".into(), json!(self.skip_dark));
        }
        if self.skip_unchanged || self.no_skip_unchanged {
            m.insert("skip_unchanged".into(), json!(self.skip_unchanged));
        }
        if let Some(v) = &self.dark_threshold {
            m.insert("dark_threshold".into(), v.clone());
        }
        if let Some(s) = &self.stream {
            let v = if s == "camera" { Value::Null } else { json!(s) };
            m.insert("stream".into(), v);
        }
        if let Some(v) = &self.retention_hours {
            m.insert("retention_hours".into(), v.clone());
        }
        m
    }
}

/// `--dark-threshold`: 0 to 255, or `default` (null).
fn parse_threshold(s: &str) -> Result<Value, String> {
    if s == "default" {
        return Ok(Value::Null);
    }
    match s.parse::<u8>() {
        Ok(n) => Ok(json!(n)),
        Err(_) => Err(format!(
            "{s:?} is not a mean luma: give 0 to 255, or default"
        )),
    }
}

/// `--retention-hours`: a positive number of hours, or `global` (null).
fn parse_retention(s: &str) -> Result<Value, String> {
    if s == "global" {
        return Ok(Value::Null);
    }
    match s.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(json!(n)),
        _ => Err(format!(
            "{s:?} is not a number of hours: give 1 or more, or global"
        )),
    }
}

/// `sch_…: gate every 1m, aligned, Europe/Berlin, next frame 2026-11-29 08:01:00` (or
/// `, paused`).
fn describe(s: &Value) -> String {
    format!(
        "{}: {} {}, {}{}",
        output::text(s, "id"),
        output::text(s, "camera_id"),
        words(s),
        state(s),
        rules(s)
    )
}
/// `; skips dark (< 16) and unchanged frames, from the sub stream, kept 48h`, or nothing.
fn rules(s: &Value) -> String {
    let mut out = Vec::new();
    let skips: Vec<String> = [
        (s["skip_dark"] == true).then(|| {
            let t = s["dark_threshold"].as_i64().unwrap_or(16);
            format!("dark (< {t})")
        }),
        (s["skip_unchanged"] == true).then(|| "unchanged".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !skips.is_empty() {
        out.push(format!("skips {} frames", skips.join(" and ")));
    }
    if let Some(stream) = s["stream"].as_str() {
        out.push(format!("from the {stream} stream"));
    }
    if let Some(h) = s["retention_hours"].as_i64() {
        out.push(format!("kept {h}h"));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!("; {}", out.join(", "))
    }
}

/// The frame rules in a list column: `dark<30, unchanged, snapshot, 48h`, or `-` for none (a
/// table cell has no room for `rules`' sentence; `schedule show` has it).
fn rules_compact(s: &Value) -> String {
    let mut out = Vec::new();
    if s["skip_dark"] == true {
        out.push(format!(
            "dark<{}",
            s["dark_threshold"].as_i64().unwrap_or(16)
        ));
    }
    if s["skip_unchanged"] == true {
        out.push("unchanged".to_string());
    }
    if let Some(stream) = s["stream"].as_str() {
        out.push(stream.to_string());
    }
    if let Some(h) = s["retention_hours"].as_i64() {
        out.push(format!("{h}h"));
    }
    if out.is_empty() {
        "-".to_string()
    } else {
        out.join(", ")
    }
}

/// `next frame …`, `paused`, or `idle: no window ahead`.
fn state(s: &Value) -> String {
    if s["enabled"] != true {
        "paused".to_string()
    } else if s["next_due_at"].is_null() {
        "idle: no window ahead".to_string()
    } else {
        format!("next frame {}", output::time(output::ts(&s["next_due_at"])))
    }
}

const DAYS: [(&str, &str); 7] = [
    ("mon", "Mon"),
    ("tue", "Tue"),
    ("wed", "Wed"),
    ("thu", "Thu"),
    ("fri", "Fri"),
    ("sat", "Sat"),
    ("sun", "Sun"),
];

/// Weekdays as `Mon–Fri`, `Mon, Wed, Sat`: runs of three or more days as a range.
fn days_words(days: &[&str]) -> String {
    let on: Vec<bool> = DAYS.iter().map(|(d, _)| days.contains(d)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !on[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < 7 && on[j + 1] {
            j += 1;
        }
        if j - i >= 2 {
            out.push(format!("{}–{}", DAYS[i].1, DAYS[j].1));
        } else {
            out.extend((i..=j).map(|k| DAYS[k].1.to_string()));
        }
        i = j + 1;
    }
    out.join(", ")
}

/// A schedule in words: `every 5m, aligned, Europe/Berlin`, `at 06:00, 12:00 on Mon–Fri`,
/// `every 10m, sunrise to sunset +30 min, Arctic/Longyearbyen`; the zone unless it is UTC. The
/// dashboard's `scheduleWords` (web/js/schedule_form.js) follows the same rule, with its units
/// spelled out.
fn words(s: &Value) -> String {
    let strs = |k: &str| -> Vec<&str> {
        s[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let at = strs("at");
    let mut out = if at.is_empty() {
        let every = s["interval_seconds"].as_i64().map_or("?".into(), fmt_span);
        format!("every {every}")
    } else {
        format!("at {}", at.join(", "))
    };
    let days = strs("weekdays");
    if !days.is_empty() && days.len() < 7 {
        out += &format!(" on {}", days_words(&days));
    }
    if let (Some(from), Some(to)) = (s["active_from"].as_str(), s["active_to"].as_str()) {
        out += &format!(", {from}–{to}");
    }
    if s["daylight"].is_object() {
        out += ", sunrise to sunset";
        match s["daylight"]["offset_minutes"].as_i64().unwrap_or(0) {
            0 => {}
            o if o > 0 => out += &format!(" +{o} min"),
            o => out += &format!(" −{} min", -o),
        }
    }
    if s["align"] == true && at.is_empty() {
        out += ", aligned";
    }
    if let Some(tz) = s["timezone"].as_str().filter(|tz| *tz != "UTC") {
        out += &format!(", {tz}");
    }
    out
}

/// `schedule show`: the words, then one field a line.
fn show(s: &Value) -> String {
    let or_dash = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(t) => t.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let daylight = if s["daylight"].is_object() {
        format!(
            "lat {}, lon {}, offset {} min",
            s["daylight"]["lat"],
            s["daylight"]["lon"],
            s["daylight"]["offset_minutes"].as_i64().unwrap_or(0)
        )
    } else {
        "-".into()
    };
    let rows = [
        ("schedule", words(s)),
        ("id", output::text(s, "id")),
        ("camera", output::text(s, "camera_id")),
        ("state", state(s)),
        (
            "interval",
            if s["at"].is_array() {
                "- (fixed times)".into()
            } else {
                s["interval_seconds"].as_i64().map_or("?".into(), fmt_span)
            },
        ),
        (
            "aligned",
            if s["align"] == true { "yes" } else { "no" }.into(),
        ),
        ("at", or_dash(&s["at"])),
        ("time zone", output::text(s, "timezone")),
        ("weekdays", or_dash(&s["weekdays"])),
        ("from", or_dash(&s["active_from"])),
        ("to", or_dash(&s["active_to"])),
        ("daylight", daylight),
        ("rules", rules(s).trim_start_matches("; ").to_string()),
        ("last fired", output::time(output::ts(&s["last_fired_at"]))),
    ];
    output::pairs(&rows).trim_fmt().to_string()
}

/// Heldar clamps intervals; say so when the one asked for is not the one in use.
fn note_clamp(asked: Option<i64>, s: &Value) {
    if let (Some(asked), Some(got)) = (asked, s["interval_seconds"].as_i64()) {
        if asked != got {
            eprintln!(
                "heldar: note: Heldar keeps intervals between 5s and 1d; this one is {}",
                fmt_span(got)
            );
        }
    }
}

async fn list(c: &Client, camera: Option<&str>) -> CliResult<()> {
    let listing = match camera {
        Some(cam) => {
            let path = format!("/api/v1/cameras/{}/snapshot-schedules", seg("camera", cam)?);
            c.get_all(&path, &[]).await?
        }
        None => every_schedule(c).await?,
    };
    if c.json {
        listing.print_json();
        return Ok(());
    }
    let all = listing.items;
    if all.is_empty() {
        output::line("no schedules; add one with: heldar schedule add CAMERA --every 5m");
        return Ok(());
    }
    let mut t = output::table(&[
        "id",
        "camera",
        "schedule",
        "state",
        "next frame",
        "last fired",
        "rules",
    ]);
    for s in &all {
        t.add_row(vec![
            output::text(s, "id"),
            output::text(s, "camera_id"),
            words(s),
            if s["enabled"] == true { "on" } else { "paused" }.to_string(),
            if s["enabled"] == true {
                output::time(output::ts(&s["next_due_at"]))
            } else {
                "-".to_string()
            },
            output::time(output::ts(&s["last_fired_at"])),
            rules_compact(s),
        ]);
    }
    output::line(t.trim_fmt());
    Ok(())
}

/// Every schedule: the list-all route where the server has it, else camera by camera.
async fn every_schedule(c: &Client) -> CliResult<Listing> {
    match c.get_all("/api/v1/snapshot-schedules", &[]).await {
        Ok(all) => return Ok(all),
        Err(e) if is_missing_route(&e) => {}
        Err(e) => return Err(e),
    }
    let cameras = c.get_all("/api/v1/cameras", &[]).await?.items;
    let mut all = Vec::new();
    for cam in cameras {
        let Some(id) = cam["id"].as_str() else {
            continue;
        };
        let path = format!("/api/v1/cameras/{}/snapshot-schedules", seg("camera", id)?);
        match c.get_all(&path, &[]).await {
            Ok(list) => all.extend(list.items),
            // Deleted between the two calls: it has no schedules any more.
            Err(e) if e.exit == Exit::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Listing {
        items: all,
        raw: None,
    })
}

/// A server older than `GET /api/v1/snapshot-schedules`: 404 (no route) or 405 (the path
/// exists for other methods).
fn is_missing_route(e: &CliError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("not_found") | Some("method_not_allowed")
    )
}
