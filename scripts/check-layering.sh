#!/usr/bin/env bash
# Fails, naming each edge, when a workspace crate depends on one its layer must
# not. Reads `cargo metadata`; only normal and build dependencies count (tests
# may stand up a real server; jamz-sync's tests turn on its own `sim`).
#
#   jamz-proto    the wire types: no workspace crate
#   jamz-sync     the sans-IO engine: jamz-proto only
#   adapters      jamz-audio, jamz-cache, jamz-link, jamz-mesh, jamz-geo: jamz-proto
#                 only (they know nothing of each other, of the engine or the node)
#   jamz-server   shares only jamz-proto with the client
#   jamz-node     wires everything: any crate but the faces
#   faces         trafficjamz (src-tauri), jamz-cli: jamz-node and jamz-proto only
#   jamz-e2e      the cross-crate tests: anything
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps | node -e '
const meta = JSON.parse(require("fs").readFileSync(0, "utf8"));
const adapter = ["jamz-proto"];
const allowed = {
  "jamz-proto": [],
  "jamz-sync": ["jamz-proto"],
  "jamz-audio": adapter, "jamz-cache": adapter, "jamz-link": adapter,
  "jamz-mesh": adapter, "jamz-geo": adapter,
  "jamz-server": ["jamz-proto"],
  "jamz-node": null,
  "trafficjamz": ["jamz-node", "jamz-proto"],
  "jamz-cli": ["jamz-node", "jamz-proto"],
  "jamz-e2e": null,
};
const faces = ["trafficjamz", "jamz-cli"];
const members = new Set(meta.packages.map((p) => p.name));
const wrong = [];
for (const p of meta.packages) {
  if (!(p.name in allowed)) {
    wrong.push(`${p.name}: no layering rule for this crate (add one to scripts/check-layering.sh)`);
    continue;
  }
  for (const d of p.dependencies) {
    if (d.kind === "dev" || !members.has(d.name) || d.name === p.name) continue;
    const ok = allowed[p.name] === null ? !faces.includes(d.name) : allowed[p.name].includes(d.name);
    if (!ok) {
      const may = allowed[p.name] === null ? `any crate but ${faces.join(", ")}` : allowed[p.name].join(", ") || "no workspace crate";
      wrong.push(`${p.name} -> ${d.name} (${d.kind ?? "normal"} dependency): ${p.name} may depend on ${may}`);
    }
  }
}
if (wrong.length) {
  for (const w of wrong) console.error(`layering: ${w}`);
  process.exit(1);
}
console.log(`layering: ${members.size} crates, every dependency allowed`);
'
