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

export function openDatabase(stateDirOrFile: string, options: { file?: boolean } = {}): Db {
  const path = options.file ? stateDirOrFile : join(stateDirOrFile, DB_FILE);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  // WAL: readers never block the writer; busy_timeout: two processes (flint
  // and `flint` CLI commands) may touch the file at once.
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}
