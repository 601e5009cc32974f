-- Native RTSP (docs/rtsp.md): which frame of a warm session serves a slot. `exact`: the newest
-- frame at the slot, decoded from its GOP's keyframe forward; `keyframe`: the newest keyframe at
-- the slot (cheaper: one picture decoded, up to one keyframe interval older).
ALTER TABLE cameras ADD COLUMN rtsp_frame_mode TEXT NOT NULL DEFAULT 'exact'
    CHECK (rtsp_frame_mode IN ('exact', 'keyframe'));
