//! Exactly once across a lost commit answer (docs/scale-out.md "The PostgreSQL writer"): the
//! capture writer talks to the real test cluster through a TCP proxy of this test's own, which
//! cuts the connection at COMMIT — after forwarding it and reading the server's answer (the
//! batch committed, the writer never hears so), or before forwarding it (the batch did not
//! commit), or leaves it open and silent past the writer's wait. Each way, once the proxy lets
//! connections through again, the writer answers the batch's slot claim won and its frame
//! recorded, and the database holds the frame's row once and the schedule moved once. Before batch markers, the first case answered the claim "not
//! won" and the frame held on it "claim not won": a slot lost without being counted missed.
//! Old markers are deleted by the writer itself (the last test).
//!
//! The proxy reads the client's side of the PostgreSQL protocol (the untyped start-up message,
//! then typed messages: a type byte and a length) and recognises sqlx's commit, which it sends
//! as a simple query: `Q`, the length, `COMMIT` and a zero byte. TLS is off between the writer
//! and the proxy so the bytes can be read.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::wait_for;
use heldar::db::schedules::Claim;
use heldar::db::writer::{Answer, Buffer, Writer};
use heldar::db::DbError;
use heldar::models::{fmt_ts, CameraId, Snapshot};
use sqlx::postgres::{PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where the proxy cuts the connection that carries a batch's COMMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Forward COMMIT, read the server's answer (so the batch did commit), forward nothing of
    /// it, and close both sockets.
    After,
    /// Close both sockets instead of forwarding COMMIT: the server rolls the batch back.
    Before,
    /// As `After`, but the connection stays open and silent (a network partition) until
    /// the test releases it: the writer's wait for the answer runs out.
    Silent,
}

#[derive(Default)]
struct ProxyState {
    /// The cut to make at the next COMMIT.
    armed: Option<Cut>,
    /// New connections are closed at once (the database unreachable for the writer).
    down: bool,
    /// The cuts made.
    cuts: Vec<Cut>,
    /// Ends a silent connection.
    release: Arc<tokio::sync::Notify>,
}

/// A TCP proxy on 127.0.0.1 in front of the test cluster.
struct Proxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
}

impl Proxy {
    async fn start(server_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.lock().unwrap().down {
                    // Closed before the start-up answer: the writer's connect fails at once.
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        Proxy { port, state }
    }

    fn arm(&self, cut: Cut) {
        self.state.lock().unwrap().armed = Some(cut);
    }

    fn down(&self) {
        self.state.lock().unwrap().down = true;
    }

    fn up(&self) {
        self.state.lock().unwrap().down = false;
    }

    fn cuts(&self) -> Vec<Cut> {
        self.state.lock().unwrap().cuts.clone()
    }

    /// Close the silent connection.
    fn release(&self) {
        self.state.lock().unwrap().release.notify_one();
    }
}

/// Complete client→server messages out of the byte stream.
#[derive(Default)]
struct Messages {
    buf: Vec<u8>,
    /// The start-up message (no type byte) has gone by.
    started: bool,
}

impl Messages {
    fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            // Start-up: length (4 bytes, itself included), then its body. Then: a type byte,
            // the length (itself included, not the type byte), the body.
            let head = if self.started { 1 } else { 0 };
            if self.buf.len() < head + 4 {
                break;
            }
            let len =
                u32::from_be_bytes(self.buf[head..head + 4].try_into().unwrap()) as usize + head;
            if self.buf.len() < len {
                break;
            }
            out.push(self.buf.drain(..len).collect());
            self.started = true;
        }
        out
    }
}

/// sqlx's commit of a transaction: a simple query of `COMMIT`.
fn is_commit(msg: &[u8]) -> bool {
    msg.first() == Some(&b'Q') && msg.get(5..) == Some(b"COMMIT\0".as_slice())
}

/// Forward both ways until either side closes, or the armed cut is made.
async fn relay(mut client: TcpStream, mut server: TcpStream, state: Arc<Mutex<ProxyState>>) {
    let mut messages = Messages::default();
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_server = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = client.read(&mut from_client) => {
                let n = match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                for msg in messages.push(&from_client[..n]) {
                    let cut = match is_commit(&msg) {
                        true => state.lock().unwrap().armed.take(),
                        false => None,
                    };
                    if let Some(cut) = cut {
                        if cut != Cut::Before {
                            // sqlx sends COMMIT only after every earlier answer came, so the
                            // next bytes from the server are COMMIT's own answer: read (the
                            // commit is done), never forwarded.
                            server.write_all(&msg).await.unwrap();
                            let n = server.read(&mut from_server).await.unwrap();
                            assert!(n > 0, "the server closed instead of answering COMMIT");
                        }
                        let release = {
                            let mut s = state.lock().unwrap();
                            s.cuts.push(cut);
                            // The writer finds the database unreachable until the test says.
                            s.down = true;
                            s.release.clone()
                        };
                        if cut == Cut::Silent {
                            release.notified().await;
                        }
                        // Both sockets close as they are dropped.
                        return;
                    }
                    if server.write_all(&msg).await.is_err() {
                        return;
                    }
                }
            }
            n = server.read(&mut from_server) => {
                let n = match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if client.write_all(&from_server[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

/// A fresh, migrated database with camera `cam-0` and its 60 s schedule `sch_0` due at
/// `at(0)` (the direct pool), and a pool with the same settings through a new proxy (plain
/// TCP, so the proxy can read the bytes).
async fn database() -> (PgPool, PgPool, Proxy) {
    let pg = common::postgres::seeded_database(1, at(0)).await;
    let direct = pg.connect_options();
    let proxy = Proxy::start(direct.get_port()).await;
    let opts = (*direct)
        .clone()
        .host("127.0.0.1")
        .port(proxy.port)
        .ssl_mode(PgSslMode::Disable);
    let proxied = PgPoolOptions::new().connect_lazy_with(opts);
    (pg, proxied, proxy)
}

fn frame() -> Snapshot {
    Snapshot {
        id: "snp_1".into(),
        camera_id: CameraId::parse("cam-0").unwrap(),
        schedule_id: Some("sch_0".into()),
        path: "cam-0/snp_1.jpg".into(),
        taken_at: at(0),
        size_bytes: 1000,
        width: Some(64),
        height: Some(48),
        created_at: at(1),
        tag: None,
    }
}

fn claim() -> Claim {
    Claim {
        id: "sch_0".into(),
        slot: at(0),
        next: Some(at(60)),
    }
}

/// The answer, once the database returns.
async fn settle<T>(a: Answer<T>) -> Result<T, DbError> {
    match a {
        Answer::Done(r) => r,
        Answer::Held(p) => tokio::time::timeout(Duration::from_secs(30), p.wait())
            .await
            .expect("a held answer within 30 s of the database's return"),
    }
}

/// (frame rows, the schedule's next_due_at and last_fired_at, batch markers), read directly.
async fn rows(pg: &PgPool) -> (i64, String, Option<String>, i64) {
    let frames: i64 = sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE id = 'snp_1'")
        .fetch_one(pg)
        .await
        .unwrap();
    let (next, last): (String, Option<String>) = sqlx::query_as(
        "SELECT next_due_at, last_fired_at FROM snapshot_schedules WHERE id = 'sch_0'",
    )
    .fetch_one(pg)
    .await
    .unwrap();
    let markers: i64 = sqlx::query_scalar("SELECT count(*) FROM writer_batches")
        .fetch_one(pg)
        .await
        .unwrap();
    (frames, next, last, markers)
}

/// How the claim and the frame reach one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// Held during an outage (the proxy down), the frame taken under the held claim (as the
    /// scheduler does), and tried together when the database returns: the batch is
    /// [claim, frame-needing-that-claim].
    Held,
    /// A fresh batch with the database up: the scheduled frame lingers for company, the
    /// claim joins it and ends the wait.
    Fresh,
}

/// Cut the COMMIT of one batch carrying a slot claim and a frame (`cut`), check what the
/// database holds meanwhile, let the writer reach the server again, and check the answers and
/// the rows: the claim won, the frame recorded, each committed exactly once.
async fn cut_one_commit(cut: Cut, batch: Batch) {
    let (pg, proxied, proxy) = database().await;
    let (w, task) =
        Writer::start_postgres(&proxied, Duration::from_secs(2), Buffer::default()).unwrap();
    let (claimed, recorded) = match batch {
        Batch::Held => {
            proxy.down();
            let claimed = w.claim_many_or_hold(vec![claim()]).await;
            assert!(matches!(claimed, Answer::Held(_)), "the claim is held");
            let key = ("sch_0".to_string(), at(0));
            let recorded = w.record_frame_or_hold(frame(), Some(key)).await;
            assert!(matches!(recorded, Answer::Held(_)), "the frame is held");
            wait_for(
                "the claim and the frame held",
                Duration::from_secs(10),
                || {
                    let n = w.held();
                    async move { (n == 2).then_some(()) }
                },
            )
            .await;
            proxy.arm(cut);
            proxy.up();
            (claimed, recorded)
        }
        Batch::Fresh => {
            proxy.arm(cut);
            // `join!` polls in order: the frame reaches the writer's queue first and lingers;
            // the claim, urgent, joins its batch and ends the wait.
            let (recorded, claimed) = tokio::join!(
                w.record_frame_or_hold(frame(), None),
                w.claim_many_or_hold(vec![claim()]),
            );
            (claimed, recorded)
        }
    };
    wait_for(
        "the proxy to cut at COMMIT",
        Duration::from_secs(20),
        || {
            let cuts = proxy.cuts();
            async move { (!cuts.is_empty()).then_some(cuts) }
        },
    )
    .await;
    assert_eq!(proxy.cuts(), vec![cut]);
    wait_for(
        "the writer to declare the outage",
        Duration::from_secs(10),
        || {
            let o = w.outage();
            async move { o }
        },
    )
    .await;
    let ts = |s| fmt_ts(at(s));
    // What the cut left: the whole batch, marker included, or none of it.
    let between = rows(&pg).await;
    match cut {
        Cut::After => assert_eq!(between, (1, ts(60), Some(ts(0)), 1)),
        Cut::Silent => {
            assert_eq!(between, (1, ts(60), Some(ts(0)), 1));
            // The writer gave up waiting (the outage above); the partition ends with the
            // connection closing, as TCP's own timeouts would close it.
            proxy.release();
        }
        Cut::Before => {
            // The server ends the cut connection's transaction as it notices the close.
            wait_for(
                "the server to roll the cut batch back",
                Duration::from_secs(10),
                || async {
                    let idle: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND application_name = 'heldar-writer'",
                    )
                    .fetch_one(&pg)
                    .await
                    .unwrap();
                    (idle == 0).then_some(())
                },
            )
            .await;
            assert_eq!(rows(&pg).await, (0, ts(0), None, 0));
        }
    }
    assert!(
        w.outage().is_some(),
        "the batch is held while the proxy is down"
    );

    proxy.up();
    assert_eq!(
        settle(claimed).await.unwrap(),
        vec![true],
        "the claim whose commit answer was lost ({cut:?}, {batch:?}) is answered won"
    );
    settle(recorded)
        .await
        .unwrap_or_else(|e| panic!("the frame ({cut:?}, {batch:?}) is recorded, not lost: {e}"));
    wait_for(
        "the writer to end the outage",
        Duration::from_secs(10),
        || {
            let o = w.outage();
            async move { o.is_none().then_some(()) }
        },
    )
    .await;
    // One row, the schedule moved once, and one marker: a replay ran under the same one.
    assert_eq!(rows(&pg).await, (1, ts(60), Some(ts(0)), 1));
    assert_eq!(proxy.cuts(), vec![cut], "no other COMMIT was cut");
    // The writer goes on as before: the next slot, then a stale view of the cut one.
    assert!(w.claim("sch_0", at(60), at(120)).await.unwrap());
    assert!(!w.claim("sch_0", at(0), at(60)).await.unwrap());
    assert_eq!(rows(&pg).await.3, 3, "a marker per committed batch");
    task.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_claim_and_its_frame_whose_commit_answer_was_lost_are_answered_won_and_recorded() {
    cut_one_commit(Cut::After, Batch::Held).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_batch_whose_commit_answer_was_lost_is_answered_from_its_transaction() {
    cut_one_commit(Cut::After, Batch::Fresh).await;
}

/// The connection stays open and silent after COMMIT: the writer's 5 s wait runs out (a timeout
/// rather than an error), and the marker settles it the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_left_unanswered_past_the_writers_wait_is_answered_from_its_transaction() {
    cut_one_commit(Cut::Silent, Batch::Fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_batch_cut_before_its_commit_runs_again_and_commits_once() {
    cut_one_commit(Cut::Before, Batch::Held).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_batch_cut_before_its_commit_runs_again_and_commits_once() {
    cut_one_commit(Cut::Before, Batch::Fresh).await;
}

/// Markers older than an hour are deleted by the writer (after its first batch, then once a
/// minute), whoever wrote them; younger ones are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_deletes_markers_older_than_an_hour_and_keeps_younger_ones() {
    let (pg, proxied, _proxy) = database().await;
    let now = Utc::now();
    for (id, age) in [("old", 61 * 60), ("young", 59 * 60)] {
        sqlx::query("INSERT INTO writer_batches (id, created_at) VALUES ($1, $2)")
            .bind(id)
            .bind(fmt_ts(now - chrono::Duration::seconds(age)))
            .execute(&pg)
            .await
            .unwrap();
    }
    let (w, task) = Writer::start_postgres(&proxied, Duration::ZERO, Buffer::default()).unwrap();
    assert!(w.claim("sch_0", at(0), at(60)).await.unwrap());
    let left: Vec<String> = wait_for(
        "the old marker to be deleted",
        Duration::from_secs(10),
        || async {
            let ids: Vec<String> =
                sqlx::query_scalar("SELECT id FROM writer_batches ORDER BY created_at")
                    .fetch_all(&pg)
                    .await
                    .unwrap();
            (!ids.iter().any(|i| i == "old")).then_some(ids)
        },
    )
    .await;
    // The young marker and the claim's own.
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0], "young");
    task.finish().await;
}

/// A partition that never heals for the writer's connection (its COMMIT's answer never comes
/// and the socket stays open), while new connections get through: the writer opens a new
/// connection, learns from the marker that the batch committed, and answers it — it does not
/// wait for TCP to give up on the silent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_left_silent_for_good_is_replaced_and_the_batch_answered() {
    let (pg, proxied, proxy) = database().await;
    let (w, task) =
        Writer::start_postgres(&proxied, Duration::from_secs(2), Buffer::default()).unwrap();
    proxy.arm(Cut::Silent);
    let (recorded, claimed) = tokio::join!(
        w.record_frame_or_hold(frame(), None),
        w.claim_many_or_hold(vec![claim()]),
    );
    wait_for(
        "the writer to declare the outage",
        Duration::from_secs(20),
        || {
            let o = w.outage();
            async move { o }
        },
    )
    .await;
    assert_eq!(proxy.cuts(), vec![Cut::Silent]);
    // New connections get through again; the silent one is never released.
    proxy.up();
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        (settle(claimed).await, settle(recorded).await)
    })
    .await
    .expect("the batch is answered within 30 s of the database being reachable again");
    assert_eq!(answered.0.unwrap(), vec![true], "the claim is answered won");
    answered.1.expect("the frame is recorded");
    let ts = |s| fmt_ts(at(s));
    assert_eq!(rows(&pg).await, (1, ts(60), Some(ts(0)), 1));
    assert!(w.claim("sch_0", at(60), at(120)).await.unwrap());
    proxy.release();
    task.finish().await;
}
