// #/system — health, disk use, retention in effect and per-camera capture counts, from
// GET /api/v1/system (counts are the same counters /metrics exports), and the nodes sharing the
// database with the cameras each holds, from GET /api/v1/nodes (docs/fleet.md). Refreshed every
// 10 s.

import { get, enc } from "./api.js";
import { h, clear, stateLabel, ago, fmtBytes, fmtDuration, fmtTime, every, message } from "./util.js";

export const NAME = "system";
export const REFRESH_MS = 10000;

function dl(rows) {
  return h("dl", { class: "facts" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

const NODE_STATE = { live: ["state-online", "Live"], draining: ["state-unknown", "Draining"], dead: ["state-failing", "Dead"] };

// The nodes table: one row per Heldar process sharing the database, the cameras it captures.
function nodesCard(nodes) {
  const cams = (n) => {
    if (!n.camera_count) return "none";
    const shown = n.cameras.slice(0, 8).map((c, i) => [i ? ", " : "", h("a", { href: `#/cameras/${enc(c)}` }, c)]);
    return [`${n.camera_count.toLocaleString()}: `, shown, n.camera_count > 8 ? ` and ${(n.camera_count - 8).toLocaleString()} more` : ""];
  };
  return h("section", { class: "card", "aria-labelledby": "h-nodes" },
    h("h2", { id: "h-nodes" }, "Nodes"),
    h("p", { class: "muted" }, "Heldar processes sharing this database; each captures the cameras it holds a lease on. A lone node holds every camera."),
    nodes.length
      ? h("div", { class: "table-wrap" }, h("table", { id: "node-table" },
        h("thead", {}, h("tr", {},
          ["Node", "Machine", "Version", "State", "Cameras", "Heartbeat", "Started", "Health"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, nodes.map((n) => {
          const [cls, label] = NODE_STATE[n.state] || ["state-unknown", n.state];
          return h("tr", { dataset: { node: n.id } },
            h("th", { scope: "row" }, h("code", {}, n.id), n.this_node ? h("span", { class: "muted" }, " (this one)") : null),
            h("td", {}, n.name),
            h("td", {}, n.version),
            h("td", {}, h("span", { class: `badge ${cls}`, dataset: { k: "state" } }, label)),
            h("td", { dataset: { k: "cameras" } }, cams(n)),
            h("td", { title: fmtTime(n.heartbeat_at) }, ago(n.heartbeat_at)),
            h("td", { title: fmtTime(n.started_at) }, ago(n.started_at)),
            h("td", { class: n.health.ok ? "" : "err-cell", dataset: { k: "health" } }, n.health.ok ? "OK" : n.health.problem));
        }))))
      : h("p", {}, "No node is registered (the scheduler is off on this server)."));
}

export async function render(main) {
  document.title = "System · Heldar";
  const body = h("div", { id: "system" });
  main.append(h("h1", {}, "System"), body);

  async function refresh() {
    let s, nodes;
    try {
      // Nodes are optional to the page: an older server without the route still shows the rest.
      [s, nodes] = await Promise.all([get("/api/v1/system"), get("/api/v1/nodes").catch(() => null)]);
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
      nodes ? nodesCard(nodes) : null,
    );
  }

  return every(REFRESH_MS, refresh);
}
