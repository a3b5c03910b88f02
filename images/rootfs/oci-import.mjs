#!/usr/bin/env node
// Unpacks a container image archive into a directory tree, for
// `flint image build rootfs --from-oci ARCHIVE`. Accepts both layouts:
//   `docker save` archives (manifest.json listing Layers), and
//   OCI image layouts (index.json → manifest → layers).
// Layers are applied in order with OCI whiteouts honoured: `.wh.NAME`
// deletes NAME from the layers below, `.wh..wh..opq` empties its directory.
// Usage: oci-import.mjs ARCHIVE DEST
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

const [archive, dest] = process.argv.slice(2);
if (!archive || !dest) {
  console.error('usage: oci-import.mjs ARCHIVE DEST');
  process.exit(2);
}
const unpack = mkdtempSync(join(tmpdir(), 'flint-oci-'));
try {
  execFileSync('tar', ['-xf', archive, '-C', unpack]);
  let layers;
  if (existsSync(join(unpack, 'manifest.json'))) {
    const manifest = JSON.parse(readFileSync(join(unpack, 'manifest.json'), 'utf8'));
    if (!Array.isArray(manifest) || manifest.length !== 1) throw new Error('manifest.json must describe exactly one image');
    layers = manifest[0].Layers.map((l) => join(unpack, l));
  } else if (existsSync(join(unpack, 'index.json'))) {
    const blob = (digest) => join(unpack, 'blobs', ...digest.split(':'));
    const index = JSON.parse(readFileSync(join(unpack, 'index.json'), 'utf8'));
    let manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
    if (manifest.manifests) manifest = JSON.parse(readFileSync(blob(manifest.manifests[0].digest), 'utf8'));
    layers = manifest.layers.map((l) => blob(l.digest));
  } else {
    throw new Error('not an image archive: neither manifest.json (docker save) nor index.json (OCI layout) inside');
  }
  mkdirSync(dest, { recursive: true });
  for (const layer of layers) {
    const entries = execFileSync('tar', ['-tf', layer], { maxBuffer: 1 << 30 }).toString().split('\n').filter(Boolean);
    for (const entry of entries) {
      const name = basename(entry);
      const dir = dirname(entry);
      if (name === '.wh..wh..opq') {
        const target = join(dest, dir);
        if (existsSync(target)) for (const child of readdirSync(target)) rmSync(join(target, child), { recursive: true, force: true });
      } else if (name.startsWith('.wh.')) {
        rmSync(join(dest, dir, name.slice(4)), { recursive: true, force: true });
      }
    }
    execFileSync('tar', ['-xpf', layer, '-C', dest, '--numeric-owner', '--exclude=.wh.*']);
  }
  console.log(`imported ${layers.length} layer(s) into ${dest}`);
} catch (err) {
  console.error(`oci-import: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  rmSync(unpack, { recursive: true, force: true });
}
