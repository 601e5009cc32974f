-- Native RTSP's frame mode, as migrations/0006_camera_rtsp_frame_mode.sql.
ALTER TABLE cameras ADD COLUMN rtsp_frame_mode TEXT NOT NULL DEFAULT 'exact'
    CHECK (rtsp_frame_mode IN ('exact', 'keyframe'));
