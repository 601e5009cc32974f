//! The `webhooks` service: delivers the events webhook subscriptions asked for
//! (docs/integrations.md "Webhooks").
//!
//! It reads the event bus like any subscriber and never slows capture down: each subscription
//! has its own bounded queue (HELDAR_WEBHOOK_QUEUE events; when full, the oldest is dropped and
//! counted in `heldar_webhook_dropped_total`, logged at most once a minute per subscription)
//! and its own worker, so a slow or dead receiver holds up only its own deliveries. Should the
//! service itself fall behind the bus, the events it missed are counted the same way.
//!
//! A delivery is a POST of `{id, type, created_at, data}` with `Heldar-Signature:
//! t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, `Heldar-Event` and `Heldar-Delivery`
//! headers, re-signed at each attempt. A 2xx is delivered; a network error, a timeout
//! (HELDAR_WEBHOOK_TIMEOUT_S), a 5xx or a 429 is tried again after HELDAR_WEBHOOK_RETRY_INITIAL_MS,
//! doubling up to HELDAR_WEBHOOK_RETRY_MAX_S, HELDAR_WEBHOOK_MAX_ATTEMPTS attempts in all; any
//! other answer (a 4xx, a redirect to another host, which is never followed) fails at once.
//! Each delivery is a row of the subscription's log, updated after each attempt. The secret is
//! only ever used to sign: it is in no log line and no error.
//!
//! Subscriptions are re-read when `ops::webhooks` says they changed. A deleted or disabled
//! subscription's worker stops (a delivery waiting for a retry stays `pending` in the log, as
//! does one cut by a shutdown: deliveries are not resumed after a restart).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::events::{Change, Event};
use crate::models::integrations::{Delivery, DeliveryStatus, Webhook, WebhookId};
use crate::models::new_id;
use crate::ops::{self, Ops};

/// How often a subscription's drops are logged at most.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// The signature header's value for `body` sent at unix time `t`: `t=<t>,v1=<hex>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// One event, ready to send: the same body for every subscription.
struct Job {
    event_id: String,
    kind: &'static str,
    body: Arc<str>,
}

/// A subscription's queue: bounded, drop-oldest, one consumer.
struct Queue {
    items: Mutex<VecDeque<Job>>,
    ready: tokio::sync::Notify,
    cap: usize,
    /// Drops not yet logged, and when the last log line was.
    drops: Mutex<(u64, Option<tokio::time::Instant>)>,
}

impl Queue {
    fn new(cap: usize) -> Queue {
        Queue {
            items: Mutex::new(VecDeque::new()),
            ready: tokio::sync::Notify::new(),
            cap: cap.max(1),
            drops: Mutex::new((0, None)),
        }
    }

    /// Add `job`; true when the oldest had to go.
    fn push(&self, job: Job) -> bool {
        let dropped = {
            let mut items = self.items.lock().expect("queue lock");
            let dropped = items.len() >= self.cap && items.pop_front().is_some();
            items.push_back(job);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    async fn pop(&self) -> Job {
        loop {
            if let Some(j) = self.items.lock().expect("queue lock").pop_front() {
                return j;
            }
            // notify_one keeps a permit when nobody waits: a push between the check and
            // here is not missed.
            self.ready.notified().await;
        }
    }
}

/// A running subscription: its settings (re-read on change), queue and worker.
struct Sub {
    hook: Arc<Mutex<Webhook>>,
    queue: Arc<Queue>,
    stop: CancellationToken,
}

/// The HTTP client of every delivery: a deadline per attempt, redirects followed only within
/// the same scheme, host and port (at most 3), metadata addresses refused like for cameras.
pub fn client(config: &crate::config::Config) -> anyhow::Result<reqwest::Client> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let prev = attempt.previous();
        if prev.len() > 3 {
            return attempt.error("too many redirects");
        }
        let same = prev.first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    Ok(reqwest::Client::builder()
        .timeout(config.webhooks.timeout)
        .connect_timeout(config.webhooks.timeout)
        .redirect(redirects)
        .dns_resolver(Arc::new(crate::capture::hosts::MetadataGuard {
            allow: config.allow_metadata_hosts,
            used_as: crate::capture::hosts::HostUse::Webhook,
        }))
        .user_agent(concat!("Heldar-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Run until `token` is cancelled.
pub async fn run(ops: Ops, token: CancellationToken) -> anyhow::Result<()> {
    let mut rx = ops.events.subscribe();
    let client = client(&ops.config)?;
    let mut subs: HashMap<WebhookId, Sub> = HashMap::new();
    let mut lag_logged: Option<tokio::time::Instant> = None;
    reload(&ops, &client, &mut subs, &token).await;
    let result = loop {
        tokio::select! {
            _ = token.cancelled() => break Ok(()),
            _ = ops.webhooks.changed.notified() => reload(&ops, &client, &mut subs, &token).await,
            r = rx.recv() => match r {
                Ok(ev) => {
                    dispatch(&ops, &subs, &ev);
                    // A deleted camera took its subscriptions with it (cascade): forget them
                    // before a camera of the same id is made.
                    if matches!(&*ev, Event::CameraChanged { change: Change::Deleted, .. }) {
                        reload(&ops, &client, &mut subs, &token).await;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    ops.metrics.webhook_dropped.inc_by(n);
                    if lag_logged.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
                        lag_logged = Some(tokio::time::Instant::now());
                        tracing::warn!(missed = n, "the webhook service fell behind the event bus; events dropped (heldar_webhook_dropped_total)");
                    }
                }
                Err(RecvError::Closed) => break Ok(()),
            }
        }
    };
    for s in subs.values() {
        s.stop.cancel();
    }
    result
}

/// Bring the running subscriptions in line with the database.
async fn reload(
    ops: &Ops,
    client: &reqwest::Client,
    subs: &mut HashMap<WebhookId, Sub>,
    token: &CancellationToken,
) {
    let all = match ops::webhooks::all(ops).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the webhook subscriptions; keeping the ones known");
            return;
        }
    };
    let wanted: HashMap<WebhookId, Webhook> = all
        .into_iter()
        .filter(|w| w.enabled)
        .map(|w| (w.id.clone(), w))
        .collect();
    subs.retain(|id, s| {
        let keep = wanted.contains_key(id);
        if !keep {
            s.stop.cancel();
        }
        keep
    });
    for (id, w) in wanted {
        if let Some(s) = subs.get(&id) {
            *s.hook.lock().expect("hook lock") = w;
            continue;
        }
        let sub = Sub {
            hook: Arc::new(Mutex::new(w)),
            queue: Arc::new(Queue::new(ops.config.webhooks.queue)),
            stop: token.child_token(),
        };
        let (o, c, h, q, stop) = (
            ops.clone(),
            client.clone(),
            sub.hook.clone(),
            sub.queue.clone(),
            sub.stop.clone(),
        );
        tokio::spawn(async move { work(o, c, h, q, stop).await });
        subs.insert(id, sub);
    }
}

/// Hand `ev` to every subscription that wants it.
fn dispatch(ops: &Ops, subs: &HashMap<WebhookId, Sub>, ev: &Event) {
    let kind = ev.kind();
    let wanted: Vec<&Sub> = subs
        .values()
        .filter(|s| {
            let h = s.hook.lock().expect("hook lock");
            h.events.iter().any(|e| e == kind)
                && h.camera_id.as_ref().is_none_or(|c| c == ev.camera())
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let event_id = new_id("evt");
    let mut data = ev.to_json();
    if let Some(o) = data.as_object_mut() {
        o.remove("type");
    }
    let body: Arc<str> = serde_json::json!({
        "id": event_id,
        "type": kind,
        "created_at": crate::models::fmt_ts(ops.clock.now()),
        "data": data,
    })
    .to_string()
    .into();
    for s in wanted {
        let job = Job {
            event_id: event_id.clone(),
            kind,
            body: body.clone(),
        };
        if s.queue.push(job) {
            ops.metrics.webhook_dropped.inc();
            let mut d = s.queue.drops.lock().expect("drops lock");
            d.0 += 1;
            if d.1.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
                let id = s.hook.lock().expect("hook lock").id.clone();
                tracing::warn!(webhook = %id, dropped = d.0,
                    "webhook queue full: the oldest events were dropped (the receiver is slow or down; heldar_webhook_dropped_total)");
                *d = (0, Some(tokio::time::Instant::now()));
            }
        }
    }
}

/// A subscription's worker: one delivery at a time, oldest first, until stopped.
async fn work(
    ops: Ops,
    client: reqwest::Client,
    hook: Arc<Mutex<Webhook>>,
    queue: Arc<Queue>,
    stop: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            _ = stop.cancelled() => return,
            j = queue.pop() => j,
        };
        deliver(&ops, &client, &hook, job, &stop).await;
    }
}

/// What one attempt's answer means.
enum Verdict {
    Delivered,
    Retry,
    Fail,
}

async fn save(ops: &Ops, d: &Delivery, new: bool) {
    if let Err(e) = crate::db::webhooks::save_delivery(&ops.db, d, new).await {
        tracing::warn!(delivery = %d.id, error = %e, "cannot record a webhook delivery");
    }
}

/// Deliver `job` with retries; the log row follows each attempt.
async fn deliver(
    ops: &Ops,
    client: &reqwest::Client,
    hook: &Mutex<Webhook>,
    job: Job,
    stop: &CancellationToken,
) {
    let cfg = &ops.config.webhooks;
    let webhook_id = hook.lock().expect("hook lock").id.clone();
    let mut d = Delivery {
        id: new_id("whd"),
        webhook_id: webhook_id.clone(),
        event_id: job.event_id.clone(),
        event_type: job.kind.to_string(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        response_code: None,
        last_error: None,
        created_at: ops.clock.now(),
        last_attempt_at: None,
        next_attempt_at: None,
        finished_at: None,
    };
    save(ops, &d, true).await;
    let mut delay = cfg.retry_initial;
    for attempt in 1..=cfg.max_attempts {
        // The newest URL and secret: a change applies from the next attempt.
        let (url, secret) = {
            let h = hook.lock().expect("hook lock");
            (h.url.clone(), h.secret.clone())
        };
        let now = ops.clock.now();
        let sent = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                "Heldar-Signature",
                signature(&secret, now.timestamp(), &job.body),
            )
            .header("Heldar-Event", job.kind)
            .header("Heldar-Delivery", &d.id)
            .body(job.body.to_string())
            .send();
        let answer = tokio::select! {
            _ = stop.cancelled() => return,
            a = sent => a,
        };
        d.attempts = i64::from(attempt);
        d.last_attempt_at = Some(now);
        d.next_attempt_at = None;
        let verdict = match answer {
            Ok(resp) => {
                let code = resp.status();
                d.response_code = Some(i64::from(code.as_u16()));
                if code.is_success() {
                    d.last_error = None;
                    Verdict::Delivered
                } else if code.is_server_error() || code.as_u16() == 429 {
                    d.last_error = Some(format!("the receiver answered {code}"));
                    Verdict::Retry
                } else if code.is_redirection() {
                    d.last_error = Some(format!(
                        "the receiver answered {code}, a redirect to another host, which Heldar \
                         does not follow"
                    ));
                    Verdict::Fail
                } else {
                    d.last_error = Some(format!("the receiver answered {code}; not retried"));
                    Verdict::Fail
                }
            }
            Err(e) => {
                d.response_code = None;
                let why = if e.is_timeout() {
                    format!("no answer within {} s", cfg.timeout.as_secs())
                } else {
                    // The error names the URL, which carries no credentials (refused at
                    // creation); mask it all the same.
                    crate::camera::mask::mask_url(&crate::error::report(&e))
                };
                d.last_error = Some(why);
                Verdict::Retry
            }
        };
        let last = attempt == cfg.max_attempts;
        match verdict {
            Verdict::Delivered => {
                d.status = DeliveryStatus::Delivered;
                d.finished_at = Some(ops.clock.now());
            }
            Verdict::Fail => {
                d.status = DeliveryStatus::Failed;
                d.finished_at = Some(ops.clock.now());
            }
            Verdict::Retry if last => {
                d.status = DeliveryStatus::Failed;
                d.finished_at = Some(ops.clock.now());
            }
            Verdict::Retry => {
                d.next_attempt_at = chrono::Duration::from_std(delay)
                    .ok()
                    .map(|wait| ops.clock.now() + wait);
            }
        }
        save(ops, &d, false).await;
        if d.status != DeliveryStatus::Pending {
            let result = d.status.as_str();
            ops.metrics
                .webhook_deliveries
                .get_or_create(&crate::metrics::ResultLabels {
                    result: result.to_string(),
                })
                .inc();
            if d.status == DeliveryStatus::Failed {
                tracing::warn!(webhook = %webhook_id, delivery = %d.id, event = job.kind,
                    attempts = d.attempts, error = ?d.last_error, "webhook delivery failed");
            } else {
                tracing::debug!(webhook = %webhook_id, delivery = %d.id, event = job.kind,
                    attempts = d.attempts, "webhook delivered");
            }
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(cfg.retry_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The value Python's `hmac.new(b"whsec_test", b'1700000000.{"a":1}', sha256)` gives,
        // as the receiver snippet in docs/integrations.md computes it.
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn a_full_queue_drops_its_oldest() {
        let q = Queue::new(2);
        let job = |n: u32| Job {
            event_id: format!("evt_{n}"),
            kind: "frame.stored",
            body: Arc::from("{}"),
        };
        assert!(!q.push(job(1)));
        assert!(!q.push(job(2)));
        assert!(q.push(job(3)));
        let ids: Vec<String> = q
            .items
            .lock()
            .unwrap()
            .iter()
            .map(|j| j.event_id.clone())
            .collect();
        assert_eq!(ids, ["evt_2", "evt_3"]);
    }
}
