#!/usr/bin/env bash
# Makes the clips `codecs` measures (docs/benchmarks.md, issue 15): H.264 (x264, zerolatency)
# and H.265 (x265) elementary streams at 360p (~500 kbit/s) and 1080p (~3 Mbit/s), 15 fps,
# a keyframe every 30 frames, no B-frames, 4 s (60 frames, two GOPs) each, from two of ffmpeg's own sources:
# `testsrc2` (synthetic, sharp edges) and `mandelbrot` (a zoom with fine natural-looking
# detail). No file is downloaded. Usage: make-clips.sh [DIR] (default: clips/).
set -euo pipefail
dir=${1:-clips}
mkdir -p "$dir"
secs=${SECS:-4}
for src in testsrc2 mandelbrot; do
  for res in 360p 1080p; do
    case $res in
      360p) size=640x360; rate=500k ;;
      1080p) size=1920x1080; rate=3M ;;
    esac
    case $src in
      testsrc2) lavfi="testsrc2=size=$size:rate=15" ;;
      mandelbrot) lavfi="mandelbrot=size=$size:rate=15:maxiter=512" ;;
    esac
    out="$dir/$src-$res"
    [ -s "$out.h264" ] || ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$lavfi" -t "$secs" \
      -pix_fmt yuv420p -c:v libx264 -tune zerolatency -bf 0 -g 30 -keyint_min 30 \
      -sc_threshold 0 -b:v "$rate" -maxrate "$rate" -bufsize "$rate" "$out.h264"
    # The H.265 clip re-encodes the H.264 one's pictures (the same content, no second render).
    [ -s "$out.h265" ] || ffmpeg -hide_banner -loglevel error -y -i "$out.h264" \
      -pix_fmt yuv420p -c:v libx265 -x265-params "keyint=30:min-keyint=30:bframes=0:scenecut=0:log-level=error" \
      -b:v "$rate" -maxrate "$rate" -bufsize "$rate" "$out.h265"
  done
done
ls -l "$dir"
