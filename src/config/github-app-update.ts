/**
 * Puts a newly registered GitHub App into a configuration file's text,
 * keeping everything else — other keys, their order, comments, blank
 * lines — as the operator wrote it (the `yaml` package's Document API).
 * Pure: text in, text out; `flint app create` does the file I/O.
 */
import { isMap, parseDocument, Scalar, type Document } from 'yaml';
import { FlintError } from '../core/errors/index.ts';
import { DEFAULTS } from './defaults.ts';

export interface NewGitHubApp {
  readonly appId: number;
  readonly organization: string;
  readonly privateKeyPem: string;
  readonly webhookSecret: string;
  /** Written only when it differs from what the file already resolves to (its own `apiUrl`, else the default). */
  readonly apiUrl: string;
}

/** What `flint app create` reads from an existing file before it starts: it may fill in its options. */
export interface ExistingConfig {
  readonly organization: string | undefined;
  readonly apiUrl: string | undefined;
  readonly address: string | undefined;
}

const HEADER = [
  ' Flint configuration (docs/config.md).',
  ' `flint app create` wrote the github section. Add `networks` and `runners`',
  ' before `flint serve`; `flint config check` says what is missing.',
].join('\n');

function parse(text: string, source: string): Document {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new FlintError('FLINT_ERR_CONFIG_INVALID', `${source} is not valid YAML (${e?.message.split('\n')[0] ?? 'syntax error'})`, {
      hint: `Fix the file (\`flint config check ${source}\` shows where) and run \`flint app create\` again; nothing was registered yet.`,
    });
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new FlintError('FLINT_ERR_CONFIG_INVALID', `${source} must be a mapping of keys`, { hint: 'start from the example in docs/config.md' });
  }
  if (doc.contents !== null && doc.has('github') && !isMap(doc.get('github'))) {
    throw new FlintError('FLINT_ERR_CONFIG_INVALID', `${source}: \`github\` must be a mapping of keys`, { hint: 'Fix or remove the `github` key and run `flint app create` again.' });
  }
  return doc;
}

/** The plain values of the keys `flint app create` may take as defaults; `{env: …}` references and other shapes are ignored. */
export function readExistingConfig(text: string, source: string): ExistingConfig {
  const doc = parse(text, source);
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return {
    organization: str(doc.getIn(['github', 'organization'])),
    apiUrl: str(doc.getIn(['github', 'apiUrl']))?.replace(/\/+$/, ''),
    address: str(doc.get('address')),
  };
}

/**
 * The file's text with `github.appID`, `organization`, `privateKey` and
 * `webhookSecret` set to the new App's. `privateKeyFile` and
 * `previousWebhookSecret` belong to the App being replaced and are removed.
 * `text` undefined: a new file holding only the github section.
 */
export function withGitHubApp(text: string | undefined, source: string, app: NewGitHubApp): string {
  const doc = text === undefined || text.trim() === '' ? parseDocument('') : parse(text, source);
  if (doc.contents === null) doc.contents = doc.createNode({});
  if (text === undefined || text.trim() === '') doc.commentBefore = HEADER;
  const current = readExistingConfig(doc.toString(), source).apiUrl ?? DEFAULTS.apiUrl;
  doc.setIn(['github', 'appID'], app.appId);
  doc.setIn(['github', 'organization'], app.organization);
  // A literal block keeps the PEM readable and its newlines exact.
  const pem = new Scalar(app.privateKeyPem.endsWith('\n') ? app.privateKeyPem : `${app.privateKeyPem}\n`);
  pem.type = Scalar.BLOCK_LITERAL;
  doc.setIn(['github', 'privateKey'], pem);
  doc.setIn(['github', 'webhookSecret'], app.webhookSecret);
  doc.deleteIn(['github', 'privateKeyFile']);
  doc.deleteIn(['github', 'previousWebhookSecret']);
  const apiUrl = app.apiUrl.replace(/\/+$/, '');
  if (apiUrl !== current) doc.setIn(['github', 'apiUrl'], apiUrl);
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
