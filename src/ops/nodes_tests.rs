//! Balancing and expiry on a real SQLite file, with two or three nodes in one process and a
//! virtual wall clock that moves only when the test says so.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, TimeZone, Utc};

use super::*;
use crate::clock::Clock;

/// A wall clock the test moves by hand.
struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, secs: f64) {
        *self.0.lock().unwrap() += chrono::Duration::milliseconds((secs * 1000.0) as i64);
    }
}

const PERIOD: u64 = 3;

struct Fleet {
    _dir: tempfile::TempDir,
    _writer: crate::db::writer::WriterTask,
    clock: Arc<ManualClock>,
    base: Ops,
}

impl Fleet {
    async fn new(cameras: usize) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let (ops, writer) = crate::ops::test_ops(dir.path()).await;
        let clock = Arc::new(ManualClock(Mutex::new(
            Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap(),
        )));
        let base = Ops {
            clock: clock.clone(),
            ..ops
        };
        let fleet = Fleet {
            _dir: dir,
            _writer: writer,
            clock,
            base,
        };
        for i in 0..cameras {
            fleet.add_camera(i).await;
        }
        fleet
    }

    async fn add_camera(&self, i: usize) {
        let now = crate::models::fmt_ts(self.clock.now());
        sqlx::query(
            "INSERT INTO cameras (id, name, vendor, created_at, updated_at) \
             VALUES (?, 'c', 'generic', ?, ?)",
        )
        .bind(format!("c{i:02}"))
        .bind(&now)
        .bind(&now)
        .execute(self.base.db.sqlite().expect("a SQLite test database"))
        .await
        .unwrap();
    }

    fn node(&self, id: &str) -> Ops {
        let config = NodeConfig {
            id: id.into(),
            name: "test-host".into(),
            lease_period: Duration::from_secs(PERIOD),
        };
        self.base
            .clone()
            .with_nodes(NodeState::node(config, self.clock.now()))
    }
}

fn disjoint(a: &Ops, b: &Ops) {
    let (a, b): (HashSet<_>, HashSet<_>) = (
        a.nodes.held().into_iter().collect(),
        b.nodes.held().into_iter().collect(),
    );
    assert!(a.is_disjoint(&b), "{a:?} and {b:?} overlap");
}

#[test]
fn a_share_is_cameras_over_live_nodes_rounded_up() {
    assert_eq!(share(10, 1), 10);
    assert_eq!(share(10, 3), 4);
    assert_eq!(share(9, 3), 3);
    assert_eq!(share(0, 2), 0);
    assert_eq!(share(5, 0), 5, "no live node counted yet: all of them");
}

#[tokio::test]
async fn a_lone_node_holds_every_camera_from_its_start_and_a_new_one_at_once() {
    let fleet = Fleet::new(7).await;
    let a = fleet.node("a");
    assert!(!a.nodes.holds(&CameraId::parse("c00").unwrap()));
    let t = start(&a).await.unwrap();
    assert_eq!((t.held, t.cameras, t.live_nodes), (7, 7, 1));
    fleet.add_camera(7).await;
    camera_created(&a).await;
    assert_eq!(a.nodes.held().len(), 8);
    assert!(a.nodes.holds(&CameraId::parse("c07").unwrap()));
}

#[tokio::test]
async fn cameras_split_by_count_and_a_dead_nodes_move_within_one_lease_period() {
    let fleet = Fleet::new(10).await;
    let (a, b) = (fleet.node("a"), fleet.node("b"));
    assert_eq!(start(&a).await.unwrap().held, 10, "alone, A takes all");
    // B joins: its share is 5, but nothing is free until A gives back its extra at A's tick.
    assert_eq!(start(&b).await.unwrap().held, 0);
    fleet.clock.advance(1.0);
    let t = tick(&a, true).await.unwrap();
    assert_eq!((t.held, t.released), (5, 5));
    look(&b, fleet.clock.now()).await.unwrap();
    assert_eq!((a.nodes.held().len(), b.nodes.held().len()), (5, 5));
    disjoint(&a, &b);
    // Steady state: ticks change nothing.
    for _ in 0..3 {
        fleet.clock.advance(1.0);
        assert_eq!(tick(&a, true).await.unwrap().held, 5);
        assert_eq!(tick(&b, true).await.unwrap().held, 5);
    }

    // A dies: no more ticks. Its last renewal was at `died`; its leases last a lease period.
    let died = fleet.clock.now();
    fleet.clock.advance(PERIOD as f64 - 0.5);
    let t = tick(&b, true).await.unwrap();
    assert_eq!(
        (t.held, t.live_nodes),
        (5, 2),
        "within the lease period, A's cameras stay A's"
    );
    fleet.clock.advance(0.6);
    look(&b, fleet.clock.now()).await.unwrap();
    assert_eq!(b.nodes.held().len(), 10, "B took A's cameras");
    assert!((fleet.clock.now() - died).num_milliseconds() <= (PERIOD as i64) * 1000 + 100);

    let nodes = list(&b).await.unwrap();
    let state = |id: &str| nodes.iter().find(|n| n.id == id).unwrap();
    assert_eq!(state("b").state, NodeLife::Live);
    assert_eq!(state("b").camera_count, 10);
    assert!(state("b").this_node && state("b").health.ok);
    assert_eq!(state("a").state, NodeLife::Dead);
    assert_eq!(state("a").camera_count, 0);
    assert!(state("a")
        .health
        .problem
        .as_ref()
        .unwrap()
        .contains("no heartbeat"));
    assert_eq!(nodes[0].id, "b", "live nodes first");

    // A dead node's row is kept for a day, then removed by a live node's tick.
    fleet.clock.advance(DEAD_ROWS_KEPT.as_secs_f64() - 10.0);
    tick(&b, true).await.unwrap();
    assert_eq!(list(&b).await.unwrap().len(), 2);
    fleet.clock.advance(20.0);
    tick(&b, true).await.unwrap();
    let nodes = list(&b).await.unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0].id, "b");
}

#[tokio::test]
async fn a_draining_node_hands_everything_over_at_the_others_next_look() {
    let fleet = Fleet::new(9).await;
    let (a, b, c) = (fleet.node("a"), fleet.node("b"), fleet.node("c"));
    start(&a).await.unwrap();
    start(&b).await.unwrap();
    start(&c).await.unwrap();
    fleet.clock.advance(1.0);
    tick(&a, true).await.unwrap();
    look(&b, fleet.clock.now()).await.unwrap();
    look(&c, fleet.clock.now()).await.unwrap();
    let counts = |n: &[&Ops]| n.iter().map(|o| o.nodes.held().len()).collect::<Vec<_>>();
    assert_eq!(counts(&[&a, &b, &c]), vec![3, 3, 3]);
    disjoint(&a, &b);
    disjoint(&b, &c);

    // C drains: no clock movement needed for the others to take its cameras.
    assert_eq!(drain(&c).await.unwrap(), 3);
    assert!(c.nodes.held().is_empty());
    let nodes = list(&a).await.unwrap();
    let c_row = nodes.iter().find(|n| n.id == "c").unwrap();
    assert_eq!(c_row.state, NodeLife::Draining);
    look(&a, fleet.clock.now()).await.unwrap();
    look(&b, fleet.clock.now()).await.unwrap();
    assert_eq!(
        a.nodes.held().len() + b.nodes.held().len(),
        9,
        "every camera is held again"
    );
    assert!(a.nodes.held().len() <= 5 && b.nodes.held().len() <= 5);
    disjoint(&a, &b);
    // A draining node takes nothing, even when cameras are free.
    tick(&c, true).await.unwrap();
    assert!(c.nodes.held().is_empty());
    leave(&c).await.unwrap();
    assert_eq!(
        list(&a).await.unwrap().len(),
        2,
        "a node that left is not listed"
    );
}

#[tokio::test]
async fn a_node_that_stalls_past_its_lease_loses_the_cameras_it_did_not_renew() {
    let fleet = Fleet::new(4).await;
    let (a, b) = (fleet.node("a"), fleet.node("b"));
    start(&a).await.unwrap();
    start(&b).await.unwrap();
    // A stalls (a long pause, a database away) for more than a lease period; B keeps ticking.
    for _ in 0..4 {
        fleet.clock.advance(1.0);
        tick(&b, true).await.unwrap();
    }
    assert_eq!(
        b.nodes.held().len(),
        4,
        "B took the cameras A did not renew"
    );
    // A comes back: its renewal finds nothing left to renew, and it takes its share again from
    // B's next give-back, never a camera B still holds.
    let t = tick(&a, true).await.unwrap();
    assert_eq!(t.held, 0);
    fleet.clock.advance(1.0);
    tick(&b, true).await.unwrap();
    look(&a, fleet.clock.now()).await.unwrap();
    assert_eq!((a.nodes.held().len(), b.nodes.held().len()), (2, 2));
    disjoint(&a, &b);
}

/// Outages follow the camera (docs/fleet.md): a node does not judge the silence of a camera
/// another node captures, and the open outage of a camera that moves is closed by its new
/// holder's first frame.
#[tokio::test]
async fn only_the_holder_judges_a_cameras_outage_and_it_moves_with_the_camera() {
    use crate::ops::outages;
    let fleet = Fleet::new(2).await;
    // Each node keeps its own outage state, as separate processes do.
    let a = Ops {
        outages: Arc::default(),
        ..fleet.node("a")
    };
    let b = Ops {
        outages: Arc::default(),
        ..fleet.node("b")
    };
    start(&a).await.unwrap();
    start(&b).await.unwrap();
    fleet.clock.advance(1.0);
    tick(&a, true).await.unwrap();
    look(&b, fleet.clock.now()).await.unwrap();
    let (c00, c01) = (
        CameraId::parse("c00").unwrap(),
        CameraId::parse("c01").unwrap(),
    );
    assert!(
        a.nodes.holds(&c00) && b.nodes.holds(&c01),
        "A holds c00, B c01"
    );
    // A schedule every 5 s on each camera, due now: both cameras are watched for silence.
    let due = crate::models::fmt_ts(fleet.clock.now());
    for cam in ["c00", "c01"] {
        sqlx::query(
            "INSERT INTO snapshot_schedules (id, camera_id, interval_seconds, enabled, \
             next_due_at, created_at, updated_at) VALUES (?1, ?2, 5, 1, ?3, ?3, ?3)",
        )
        .bind(format!("sch_{cam}"))
        .bind(cam)
        .bind(&due)
        .execute(fleet.base.db.sqlite().unwrap())
        .await
        .unwrap();
    }
    // B looks for silence over a minute and more (the limit: 3 × 5 s, at least 60 s) and never
    // captures: only its own camera is offline; A's, which B never captures, is not.
    crate::services::outage_watch::check(&b).await.unwrap();
    fleet.clock.advance(61.0);
    crate::services::outage_watch::check(&b).await.unwrap();
    let open = crate::db::outages::open_ones(&fleet.base.db).await.unwrap();
    let cams: Vec<&str> = open.iter().map(|o| o.camera_id.as_str()).collect();
    assert_eq!(cams, vec!["c01"], "{open:?}");
    assert!(outages::is_offline(&b, &c01).await);
    assert!(!outages::is_offline(&b, &c00).await);

    // B drains: c01 moves to A, with its open outage, which A's first frame of it closes.
    drain(&b).await.unwrap();
    fleet.clock.advance(0.5);
    tick(&a, true).await.unwrap();
    assert!(a.nodes.holds(&c01));
    assert!(
        outages::is_offline(&a, &c01).await,
        "A took up the open outage"
    );
    outages::after_capture(&a, &c01, Ok(()), fleet.clock.now()).await;
    assert!(!outages::is_offline(&a, &c01).await);
    assert!(crate::db::outages::open_ones(&fleet.base.db)
        .await
        .unwrap()
        .is_empty());
    let row = crate::db::outages::get(&fleet.base.db, &open[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.ended_at, Some(fleet.clock.now().trunc_subsecs(3)));
}

/// A camera that moves to another node keeps its last known state there: the new holder reads
/// the status its last holder stored (here `failing`), so its first capture announces a change
/// only if there is one — not `unknown → online` for a camera it never saw, nor nothing for a
/// `failing` camera that recovers.
#[tokio::test]
async fn a_camera_that_moves_keeps_its_stored_state_on_the_new_holder() {
    let fleet = Fleet::new(1).await;
    let a = fleet.node("a");
    // Separate processes remember states apart: B's memory is its own, and empty.
    let b = Ops {
        frames: Arc::default(),
        ..fleet.node("b")
    };
    start(&a).await.unwrap();
    start(&b).await.unwrap();
    let c00 = CameraId::parse("c00").unwrap();
    assert!(a.nodes.holds(&c00) && !b.nodes.holds(&c00));
    // A's captures failed: the status row says so.
    sqlx::query(
        "INSERT INTO camera_status (camera_id, state, last_error, consecutive_failures) \
         VALUES ('c00', 'failing', 'refused', 3)",
    )
    .execute(fleet.base.db.sqlite().unwrap())
    .await
    .unwrap();
    assert_eq!(b.frames.state_of(&c00), None);

    drain(&a).await.unwrap();
    fleet.clock.advance(0.5);
    tick(&b, true).await.unwrap();
    assert!(b.nodes.holds(&c00));
    assert_eq!(
        b.frames.state_of(&c00),
        Some(crate::models::CameraState::Failing),
        "the new holder knows the state its last holder stored"
    );
}

/// A process that registers under the id of one that was stopped past the start-up check (a
/// stall): the older one sees at its next tick that its row is another process's and says so;
/// the newer one does not.
#[tokio::test]
async fn a_node_whose_id_another_process_registered_under_notices_it() {
    let fleet = Fleet::new(1).await;
    let a = fleet.node("edge-1");
    start(&a).await.unwrap();
    assert!(!tick(&a, true).await.unwrap().id_shared);
    fleet.clock.advance(1.0);
    let b = fleet.node("edge-1");
    start(&b).await.unwrap();
    assert!(
        tick(&a, true).await.unwrap().id_shared,
        "the older process notices"
    );
    assert!(!tick(&b, true).await.unwrap().id_shared);
}

/// A process killed but not yet waited for by its parent is a zombie: `kill(pid, 0)` still
/// succeeds, yet it is gone, and a node restarted under its name must not wait for it.
#[test]
fn a_killed_process_not_yet_reaped_is_gone() {
    let mut child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("sleep(1) runs");
    let pid = child.id() as i32;
    assert!(!process_gone(pid), "a running process");
    child.kill().expect("SIGKILL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !process_gone(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "a killed, unreaped process still counts as running"
        );
        std::thread::yield_now();
    }
    // Not reaped yet: the process table still has it, which is what fooled kill(pid, 0).
    assert_eq!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Ok(())
    );
    child.wait().expect("reaped");
    assert!(process_gone(pid));
}
