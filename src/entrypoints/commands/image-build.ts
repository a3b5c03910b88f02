import { FlintError } from '../../core/errors/index.ts';
import type { CommandIo } from '../io.ts';

// Placeholder until this command is built; it must not survive into a release.
export async function run(_argv: string[], _io: CommandIo): Promise<number> {
  throw new FlintError('FLINT_ERR_USAGE', 'flint image-build: not built yet');
}
