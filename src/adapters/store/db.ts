/**
 * Opens Flint's SQLite state database. Every module that persists state
 * keeps its own tables in this one file (created with CREATE TABLE IF NOT
 * EXISTS by that module), so one file under the state directory holds
 * everything and a backup is one copy.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Db = Database.Database;

export const DB_FILE = 'flint.db';

/**
 * FULL: a commit survives power loss (WAL fsynced at every commit).
 * NORMAL: a commit survives a crash of Flint, but the last commits before a
 * power loss or kernel crash may be lost (WAL fsynced at checkpoints only).
 */
export type Synchronous = 'FULL' | 'NORMAL';

export function openDatabase(stateDirOrFile: string, options: { file?: boolean; synchronous?: Synchronous } = {}): Db {
  const path = options.file ? stateDirOrFile : join(stateDirOrFile, DB_FILE);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  // WAL: readers never block the writer; busy_timeout: two processes (flint
  // and `flint` CLI commands) may touch the file at once.
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  // Always explicit: this build of SQLite defaults to FULL when it first
  // switches a file to WAL but to NORMAL when it opens a file already in
  // WAL, so without this the durability would change after a restart.
  db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
  db.pragma('foreign_keys = ON');
  return db;
}
