/** Entry point of the emulated Firecracker when the emulated jailer forks it (--new-pid-ns). */
import { runFirecracker } from './firecracker-main.ts';

runFirecracker(process.argv.slice(2)).then(
  (code) => {
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`firecracker emulator: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
