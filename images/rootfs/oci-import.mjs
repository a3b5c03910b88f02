#!/usr/bin/env node
// Unpacks a container image archive into a directory tree, for
// `flint image build rootfs --from-oci ARCHIVE`. Accepts both layouts:
//   `docker save` archives (manifest.json listing Layers), and
//   OCI image layouts (index.json → manifest → layers).
// Layers are applied in order with OCI whiteouts honoured: `.wh.NAME`
// deletes NAME from the layers below, `.wh..wh..opq` empties its directory.
// Multi-platform images: the manifest for ARCH (OCI architecture name,
// e.g. amd64, arm64) is chosen; without ARCH, the first one.
// Usage: oci-import.mjs ARCHIVE DEST [ARCH]
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, sep } from 'node:path';

const [archive, dest, arch] = process.argv.slice(2);
if (!archive || !dest) {
  console.error('usage: oci-import.mjs ARCHIVE DEST [ARCH]');
  process.exit(2);
}
// Only a directory this run created is removed again on failure.
const createdDest = !existsSync(dest);
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
    let manifest = JSON.parse(readFileSync(blob(pick(index.manifests).digest), 'utf8'));
    if (manifest.manifests) manifest = JSON.parse(readFileSync(blob(pick(manifest.manifests).digest), 'utf8'));
    layers = manifest.layers.map((l) => blob(l.digest));
  } else {
    throw new Error('not an image archive: neither manifest.json (docker save) nor index.json (OCI layout) inside');
  }
  mkdirSync(dest, { recursive: true });
  const root = realpathSync(dest);
  for (const layer of layers) {
    const entries = execFileSync('tar', ['-tf', layer], { maxBuffer: 1 << 30 }).toString().split('\n').filter(Boolean);
    for (const entry of entries) {
      // The build runs as root: no entry may reach outside the tree, neither
      // by `..` nor through a symbolic link a lower layer left (tar and rm
      // both follow links in the directories of a path).
      const dir = insideTree(root, entry);
      const name = basename(entry);
      if (name === '.wh..wh..opq') {
        if (existsSync(dir)) for (const child of readdirSync(dir)) rmSync(join(dir, child), { recursive: true, force: true });
      } else if (name.startsWith('.wh.')) {
        rmSync(join(dir, name.slice(4)), { recursive: true, force: true });
      }
    }
    execFileSync('tar', ['-xpf', layer, '-C', dest, '--numeric-owner', '--exclude=.wh.*']);
  }
  console.log(`imported ${layers.length} layer(s) into ${dest}`);
} catch (err) {
  if (createdDest) rmSync(dest, { recursive: true, force: true });
  console.error(`oci-import: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  rmSync(unpack, { recursive: true, force: true });
}

/** The descriptor for `arch` among an index's manifests (those without a platform match any). */
function pick(manifests) {
  if (!Array.isArray(manifests) || manifests.length === 0) throw new Error('the image index lists no manifests');
  if (!arch) return manifests[0];
  const found = manifests.find((m) => !m.platform || m.platform.architecture === arch);
  if (!found) {
    const have = manifests.map((m) => m.platform?.architecture).join(', ');
    throw new Error(`the image has no ${arch} variant (it has: ${have})`);
  }
  return found;
}

/**
 * The real directory that holds `entry` once the tree's existing links are
 * followed, as tar would follow them; throws if that is outside `root`.
 * Links that stay inside (Debian's `lib -> usr/lib`) are fine; a link to an
 * absolute host path (`lib -> /usr/lib`) is refused, since following it
 * would write to this host.
 */
function insideTree(root, entry) {
  const parts = entry.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Error(`layer entry ${entry} points outside the image tree`);
  let dir = root;
  for (let i = 0; i < parts.length - 1; i += 1) {
    const next = join(dir, parts[i]);
    let st;
    try {
      st = lstatSync(next);
    } catch {
      return join(next, ...parts.slice(i + 1, -1)); // not there yet: nothing below it to follow
    }
    dir = st.isSymbolicLink() ? realpathOrSelf(next) : next;
    if (dir !== root && !dir.startsWith(root + sep)) {
      throw new Error(`layer entry ${entry} leads outside the image tree (through the link ${next}); absolute links to directories are not supported`);
    }
  }
  return dir;
}

function realpathOrSelf(path) {
  try {
    return realpathSync(path);
  } catch {
    return path; // a dangling link: tar replaces it, nothing is followed
  }
}
