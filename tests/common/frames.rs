//! Stored frames with chosen times: real JPEGs kept through the frame store and the writer, as a
//! capture keeps them (for the timelapse tests, which need frames at known `taken_at`).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use heldar::fakecam::pattern;
use heldar::models::{new_id, CameraId, Snapshot};

/// Keep a real JPEG of `camera` for each of `times`, `size(i)` pixels each.
///
/// The times are before the app's start, so the app's background reconciliation (which indexes
/// a frame-named file without a row when it was named before the run began) may reach a file
/// between its write and its row here, and index it first: that row is the same frame, so it
/// counts as kept. Any other failure to index panics.
pub async fn keep_frames(
    ops: &heldar::ops::Ops,
    camera: &str,
    times: &[DateTime<Utc>],
    size: impl Fn(usize) -> (u16, u16),
) {
    let cam = CameraId::parse(camera).unwrap();
    let mut rows = Vec::new();
    for (i, t) in times.iter().enumerate() {
        let (w, h) = size(i);
        let jpeg = pattern::demo_frame(w, h, camera, *t);
        let file = ops
            .store
            .write_frame(&cam, *t, Bytes::from(jpeg.clone()))
            .await
            .unwrap();
        rows.push(Snapshot {
            id: new_id("snp"),
            camera_id: cam.clone(),
            schedule_id: None,
            path: file.rel_path,
            taken_at: *t,
            size_bytes: jpeg.len() as i64,
            width: Some(i64::from(w)),
            height: Some(i64::from(h)),
            created_at: *t,
            tag: None,
        });
    }
    if ops.writer.index(rows.clone()).await.is_ok() {
        return;
    }
    // All or none failed: one at a time, leaving the frames the reconciliation already indexed.
    for row in rows {
        let path = row.path.clone();
        if heldar::db::snapshots::by_path(&ops.db, &path)
            .await
            .unwrap()
            .is_some()
        {
            continue;
        }
        if let Err(e) = ops.writer.index(vec![row]).await {
            let indexed = heldar::db::snapshots::by_path(&ops.db, &path)
                .await
                .unwrap();
            assert!(indexed.is_some(), "indexing {path}: {e}");
        }
    }
}
