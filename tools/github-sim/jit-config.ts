/**
 * Just-in-time runner configurations in the format the Actions runner reads
 * (`run.sh --jitconfig …`): base64 of a JSON object whose keys are the files
 * `config.sh` would have written — `.runner`, `.credentials`,
 * `.credentials_rsaparams` — each value the base64 of that file's JSON.
 */
import { generateKeyPair, type JsonWebKey } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** The `.runner` settings file (field names as the runner serialises them). */
export interface RunnerSettingsFile {
  readonly agentId: number;
  readonly agentName: string;
  readonly poolId: number;
  readonly poolName: string;
  readonly serverUrl: string;
  readonly serverUrlV2: string;
  readonly gitHubUrl: string;
  readonly workFolder: string;
  readonly ephemeral: boolean;
  readonly disableUpdate: boolean;
  readonly useV2Flow: boolean;
}

/** The `.credentials` file: OAuth client credentials of the runner. */
export interface RunnerCredentialsFile {
  readonly scheme: 'OAuth';
  readonly data: { readonly clientId: string; readonly authorizationUrl: string; readonly requireFipsCryptography: 'True' | 'False' };
}

/** The `.credentials_rsaparams` file: the runner's RSA private key, as .NET RSAParameters (base64 fields). */
export interface RsaParamsFile {
  readonly d: string; readonly dp: string; readonly dq: string; readonly exponent: string;
  readonly inverseQ: string; readonly modulus: string; readonly p: string; readonly q: string;
}

export interface JitConfig {
  readonly runner: RunnerSettingsFile;
  readonly credentials: RunnerCredentialsFile;
  readonly rsaParams: RsaParamsFile;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');
/** JWK fields are base64url; .NET wants standard base64. */
const std = (u: string | undefined): string => Buffer.from(u ?? '', 'base64url').toString('base64');

export async function newRsaParams(): Promise<RsaParamsFile> {
  // 2048 bits like the runner's own key; generation is async so the server stays responsive.
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const jwk: JsonWebKey = privateKey.export({ format: 'jwk' });
  return { d: std(jwk.d), dp: std(jwk.dp), dq: std(jwk.dq), exponent: std(jwk.e), inverseQ: std(jwk.qi), modulus: std(jwk.n), p: std(jwk.p), q: std(jwk.q) };
}

export function encodeJitConfig(c: JitConfig): string {
  const files = {
    '.runner': b64(JSON.stringify(c.runner)),
    '.credentials': b64(JSON.stringify(c.credentials)),
    '.credentials_rsaparams': b64(JSON.stringify(c.rsaParams)),
  };
  return b64(JSON.stringify(files));
}

/** Decodes an encoded JIT config; throws on anything that is not one. */
export function decodeJitConfig(encoded: string): JitConfig {
  const files: unknown = JSON.parse(unb64(encoded.trim()));
  if (typeof files !== 'object' || files === null) throw new Error('not a JIT config');
  const f = files as Record<string, unknown>; // checked to be a non-null object just above
  const file = (name: string): unknown => {
    const v = f[name];
    if (typeof v !== 'string') throw new Error(`JIT config lacks ${name}`);
    return JSON.parse(unb64(v));
  };
  // Shapes are produced by encodeJitConfig above; the fields used are re-checked by the caller.
  const runner = file('.runner') as RunnerSettingsFile;
  if (typeof runner.agentId !== 'number' || typeof runner.agentName !== 'string') throw new Error('JIT config .runner is malformed');
  return { runner, credentials: file('.credentials') as RunnerCredentialsFile, rsaParams: file('.credentials_rsaparams') as RsaParamsFile };
}
