/**
 * images/rootfs/oci-import.mjs, the base of `flint image build rootfs
 * --from-oci`: container image archives made here (docker-save and OCI
 * layouts, plain and gzip layers) unpack into a tree with their layers
 * applied in order and whiteouts honoured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from './paths.ts';

const IMPORTER = join(packageRoot(), 'images', 'rootfs', 'oci-import.mjs');

type Layer = Record<string, string | { link: string } | null>;

/** Writes a layer's files (null = an empty directory; `.wh.` names are whiteouts) and tars it. */
function layerTar(dir: string, name: string, files: Layer, gzip: boolean): string {
  const tree = join(dir, `${name}-tree`);
  for (const [path, content] of Object.entries(files)) {
    const full = join(tree, path);
    if (content === null) {
      mkdirSync(full, { recursive: true });
      continue;
    }
    mkdirSync(join(full, '..'), { recursive: true });
    if (typeof content === 'string') writeFileSync(full, content);
    else symlinkSync(content.link, full);
  }
  const out = join(dir, `${name}.tar${gzip ? '.gz' : ''}`);
  execFileSync('tar', [gzip ? '-czf' : '-cf', out, '--numeric-owner', '-C', tree, '.']);
  return out;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** A `docker save` archive: manifest.json naming the layer tars in order. */
function dockerSaveArchive(dir: string, layers: readonly Layer[]): string {
  const image = join(dir, 'docker-image');
  mkdirSync(image, { recursive: true });
  const names = layers.map((files, i) => {
    mkdirSync(join(image, `l${i}`));
    const tar = layerTar(dir, `docker-l${i}`, files, false);
    execFileSync('cp', [tar, join(image, `l${i}`, 'layer.tar')]);
    return `l${i}/layer.tar`;
  });
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: names.map((n) => `sha256:${sha256(readFileSync(join(image, n)))}`) } });
  writeFileSync(join(image, `${sha256(config)}.json`), config);
  writeFileSync(join(image, 'manifest.json'), JSON.stringify([{ Config: `${sha256(config)}.json`, RepoTags: ['flint-test/base:1'], Layers: names }]));
  const archive = join(dir, 'docker-save.tar');
  execFileSync('tar', ['-cf', archive, '-C', image, '.']);
  return archive;
}

/**
 * An OCI image layout: index.json → (optionally an image index →) manifest → gzip layer blobs by digest.
 * With `decoy`, the nested index lists first an arm64 manifest whose only layer holds /decoy.
 */
function ociLayoutArchive(dir: string, layers: readonly Layer[], nestedIndex: boolean, decoy = false): string {
  const image = join(dir, 'oci-image');
  const blobs = join(image, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const blob = (data: Buffer | string): { digest: string; size: number } => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: Buffer.byteLength(data) };
  };
  const layerDescs = layers.map((files, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(readFileSync(layerTar(dir, `oci-l${i}`, files, true))) }));
  const config = blob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...blob(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: layerDescs,
  })), platform: { architecture: 'amd64', os: 'linux' } };
  const variants: object[] = [manifest];
  if (decoy) {
    const decoyLayer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(readFileSync(layerTar(dir, 'decoy', { decoy: 'arm64\n' }, true))) };
    variants.unshift({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...blob(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [decoyLayer],
    })), platform: { architecture: 'arm64', os: 'linux' } });
  }
  let top: object = manifest;
  if (nestedIndex) {
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...blob(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: variants })) };
  }
  writeFileSync(join(image, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(image, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [top] }));
  const archive = join(dir, 'oci-layout.tar');
  execFileSync('tar', ['-cf', archive, '-C', image, '.']);
  return archive;
}

function runImporter(archive: string, dest: string, arch?: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [IMPORTER, archive, dest, ...(arch === undefined ? [] : [arch])], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Three layers: a base, one that deletes and replaces, one that makes a directory opaque. */
const LAYERS: readonly Layer[] = [
  {
    'etc/os-release': 'ID=base\n',
    'etc/removed.conf': 'from the base\n',
    'usr/bin/tool': 'tool v1\n',
    'usr/bin/tool-link': { link: 'tool' },
    'opt/app/old-1': 'old\n',
    'opt/app/sub/old-2': 'old\n',
    'var/gone/file': 'x\n',
  },
  {
    'etc/.wh.removed.conf': '',
    'usr/bin/tool': 'tool v2\n',
    'var/.wh.gone': '',
    'etc/added-then-removed': 'layer 2\n',
  },
  {
    'opt/app/.wh..wh..opq': '',
    'opt/app/new': 'new\n',
    'etc/.wh.added-then-removed': '',
  },
];

function assertImported(dest: string): void {
  assert.equal(readFileSync(join(dest, 'etc', 'os-release'), 'utf8'), 'ID=base\n');
  assert.equal(existsSync(join(dest, 'etc', 'removed.conf')), false, 'a whiteout deletes the file of a lower layer');
  assert.equal(existsSync(join(dest, 'etc', 'added-then-removed')), false, 'a later layer deletes what an earlier one added');
  assert.equal(readFileSync(join(dest, 'usr', 'bin', 'tool'), 'utf8'), 'tool v2\n', 'the upper layer wins');
  assert.equal(readlinkSync(join(dest, 'usr', 'bin', 'tool-link')), 'tool', 'symbolic links stay links');
  assert.equal(existsSync(join(dest, 'var', 'gone')), false, 'a whiteout deletes a whole directory');
  assert.ok(lstatSync(join(dest, 'var')).isDirectory());
  assert.deepEqual(readdirSync(join(dest, 'opt', 'app')), ['new'], 'an opaque directory keeps only its own layer\'s entries');
  const whiteouts = execFileSync('find', [dest, '-name', '.wh.*']).toString().trim();
  assert.equal(whiteouts, '', 'no whiteout file reaches the tree');
}

test('a docker-save archive imports with its layers applied in order and whiteouts honoured', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-oci-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dest = join(dir, 'tree');
  const r = runImporter(dockerSaveArchive(dir, LAYERS), dest);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /imported 3 layer\(s\)/);
  assertImported(dest);
});

test('an OCI image layout with gzip layers imports the same tree', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-oci-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dest = join(dir, 'tree');
  const r = runImporter(ociLayoutArchive(dir, LAYERS, false), dest);
  assert.equal(r.status, 0, r.output);
  assertImported(dest);
});

test('an OCI layout whose index points to an image index (as multi-platform images do) imports the manifest inside', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-oci-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dest = join(dir, 'tree');
  const r = runImporter(ociLayoutArchive(dir, LAYERS, true), dest);
  assert.equal(r.status, 0, r.output);
  assertImported(dest);
});

test("a multi-platform image imports the variant of the build's architecture, and says which exist when it has none", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-oci-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const archive = ociLayoutArchive(dir, LAYERS, true, true);
  const r = runImporter(archive, join(dir, 'tree'), 'amd64');
  assert.equal(r.status, 0, r.output);
  assertImported(join(dir, 'tree'));
  assert.equal(existsSync(join(dir, 'tree', 'decoy')), false);
  const other = runImporter(archive, join(dir, 'tree-s390x'), 's390x');
  assert.equal(other.status, 1);
  assert.match(other.output, /no s390x variant \(it has: arm64, amd64\)/);
});

test('a whiteout that climbs out of the tree is refused and nothing outside is deleted', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-oci-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'keep me\n');
  // Layer 1 plants a symbolic link to the directory above the tree; layer 2 whites out a file "inside" it.
  const archive = dockerSaveArchive(dir, [{ 'escape': { link: dir } }, { 'escape/.wh.victim': '' }]);
  const r = runImporter(archive, join(dir, 'tree'));
  assert.notEqual(r.status, 0);
  assert.match(r.output, /outside/);
  assert.equal(readFileSync(victim, 'utf8'), 'keep me\n');
});

test('a file that is not an image archive fails with a message saying what is expected', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flint-oci-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'readme'), 'hello\n');
  execFileSync('tar', ['-cf', join(dir, 'plain.tar'), '-C', dir, 'readme']);
  const r = runImporter(join(dir, 'plain.tar'), join(dir, 'tree'));
  assert.equal(r.status, 1);
  assert.match(r.output, /neither manifest\.json \(docker save\) nor index\.json \(OCI layout\)/);
});
