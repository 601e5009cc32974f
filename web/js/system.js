// #/system — health, disk use, retention in effect and per-camera capture counts, from
// GET /api/v1/system (counts are the same counters /metrics exports). Refreshed every 10 s.

import { get, enc } from "./api.js";
import { h, clear, stateLabel, ago, fmtBytes, fmtDuration, fmtTime, every, message } from "./util.js";

export const NAME = "system";
export const REFRESH_MS = 10000;

function dl(rows) {
  return h("dl", { class: "facts" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export async function render(main) {
  document.title = "System · Heldar";
  const body = h("div", { id: "system" });
  main.append(h("h1", {}, "System"), body);

  async function refresh() {
    let s;
    try {
      s = await get("/api/v1/system");
    } catch (e) {
      clear(body).append(h("p", { class: "alert" }, "Cannot load the system status: " + message(e)));
      return;
    }
    const hl = s.health;
    const ok = hl.status === "ok";
    const r = s.retention;
    clear(body).append(
      h("div", { class: "cards" },
        h("section", { class: "card", "aria-labelledby": "h-health" },
          h("h2", { id: "h-health" }, "Health ", h("span", { class: `badge ${ok ? "state-online" : "state-failing"}`, id: "health-status" }, ok ? "OK" : "Degraded")),
          hl.problems.length ? h("ul", { class: "problems" }, hl.problems.map((p) => h("li", {}, p))) : null,
          dl([
            ["Version", s.version],
            ["Up for", fmtDuration(s.uptime_seconds)],
            ["Database", hl.database_ok ? "answers" : "does not answer"],
            ["Frame folder", hl.snapshots_dir_writable ? "writable" : "NOT writable"],
            ["Scheduler", s.scheduler.enabled ? `on, rescans every ${s.scheduler.rescan_interval_seconds} s` : "off"],
            s.capture ? ["Capture", `deadline ${s.capture.timeout_seconds} s, ${s.capture.concurrency.toLocaleString()} at once per lane`] : null,
            ["API", [h("a", { href: "/api/docs/", id: "api-docs-link" }, "Interactive docs"), " · ",
              h("a", { href: "/api/v1/openapi.json" }, "OpenAPI document")]],
          ])),
        h("section", { class: "card", "aria-labelledby": "h-disk" },
          h("h2", { id: "h-disk" }, "Disk"),
          dl([
            ["Stored frames", s.disk.stored_frames.toLocaleString()],
            ["Stored bytes", fmtBytes(s.disk.stored_bytes)],
            ["Free", fmtBytes(s.disk.free_bytes)],
            ["Frame folder", h("code", {}, s.disk.snapshots_dir)],
          ])),
        h("section", { class: "card", "aria-labelledby": "h-ret" },
          h("h2", { id: "h-ret" }, "Retention in effect"),
          dl([
            ["Keep frames for", r.max_age_hours ? `${r.max_age_hours} h` : "forever"],
            ["Size cap", r.max_bytes ? fmtBytes(r.max_bytes) : "none"],
            ["Keep free at least", r.min_free_disk_bytes ? fmtBytes(r.min_free_disk_bytes) : "no floor"],
            ["Sweep every", `${r.sweep_interval_seconds} s`],
          ]))),
      h("section", { class: "card", "aria-labelledby": "h-cams" },
        h("h2", { id: "h-cams" }, "Cameras"),
        h("p", { class: "muted" }, "Capture counts since the server started, as exported at ", h("a", { href: "/metrics" }, "/metrics"), "."),
        s.cameras.length
          ? h("div", { class: "table-wrap" }, h("table", { id: "camera-table" },
            h("thead", {}, h("tr", {},
              ["Camera", "State", "Captures ok", "Failed", "Stored", "Newest frame", "Last error"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, s.cameras.map((c) => h("tr", { dataset: { camera: c.id } },
              h("th", { scope: "row" }, h("a", { href: `#/cameras/${enc(c.id)}` }, c.name)),
              h("td", {}, h("span", { class: `badge state-${c.state}` }, stateLabel(c.state))),
              h("td", { class: "num", dataset: { k: "ok" } }, c.captures_ok.toLocaleString()),
              h("td", { class: "num", dataset: { k: "failed" } }, c.captures_failed.toLocaleString()),
              h("td", { class: "num" }, `${c.stored_frames.toLocaleString()} · ${fmtBytes(c.stored_bytes)}`),
              h("td", { title: fmtTime(c.newest_frame_at) }, c.newest_frame_at ? ago(c.newest_frame_at) : "—"),
              h("td", { class: "err-cell" }, c.last_error ? `${c.last_error} (${ago(c.last_error_at)})` : "—"))))))
          : h("p", {}, "No cameras yet."),
      ),
    );
  }

  return every(REFRESH_MS, refresh);
}
