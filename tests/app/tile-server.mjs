// A tiny HTTP tile server for the app's E2E: `/{z}/{x}/{y}.png` answers a generated
// 256x256 PNG (a checkerboard by tile, with a grid line), counting what it served.
// `stop()` closes it and every open connection: the map is then offline.

import { createServer } from "node:http";
import { deflateSync } from "node:zlib";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A 256x256 RGB PNG: light colours by tile, a darker line along two edges. */
export function tilePng(z, x, y) {
  const size = 256;
  const light = (x + y) % 2 === 0 ? [233, 228, 212] : [214, 228, 236];
  const line = [150 + (z % 5) * 10, 160, 170];
  const rows = Buffer.alloc(size * (1 + size * 3));
  for (let r = 0; r < size; r++) {
    const o = r * (1 + size * 3);
    rows[o] = 0; // filter: none
    for (let c = 0; c < size; c++) {
      const [R, G, B] = r < 3 || c < 3 ? line : light;
      rows[o + 1 + c * 3] = R;
      rows[o + 2 + c * 3] = G;
      rows[o + 3 + c * 3] = B;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Starts the server on a free loopback port: `{template, served, stop}`. */
export async function startTileServer() {
  const served = [];
  const server = createServer((req, res) => {
    const m = /^\/(\d+)\/(\d+)\/(\d+)\.png$/.exec(req.url ?? "");
    if (!m) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not a tile");
      return;
    }
    served.push(`${m[1]}/${m[2]}/${m[3]}`);
    res.writeHead(200, { "content-type": "image/png" }).end(tilePng(Number(m[1]), Number(m[2]), Number(m[3])));
  });
  await new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(0, "127.0.0.1", res);
  });
  const { port } = server.address();
  return {
    template: `http://127.0.0.1:${port}/{z}/{x}/{y}.png`,
    served,
    stop: () => new Promise((res) => {
      server.close(() => res());
      server.closeAllConnections();
    }),
  };
}
