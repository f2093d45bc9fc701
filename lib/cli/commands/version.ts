import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { runtime } from '../../kernel/index.js';
import { BACKEND_SETTINGS, detectBackend, type BackendSetting } from '../../kernel/netfilter/detect.js';
import { packageRoot } from '../../kernel/native.js';
import { columns, toJson } from '../output.js';

export const versionHelp = `nodenet version [--netns PATH] [--json]
  Versions of nodenet, its native addon and the kernel libraries it uses, and the netfilter
  backend nodenet would pick on this node (BACKEND, default auto) with the evidence for it.`;

async function backendReport(netns: string | undefined, env: NodeJS.ProcessEnv) {
  const setting = (env.BACKEND?.trim() || 'auto') as BackendSetting;
  if (!BACKEND_SETTINGS.includes(setting)) return { error: `BACKEND must be one of ${BACKEND_SETTINGS.join(', ')}, not ${JSON.stringify(env.BACKEND)}` };
  try {
    return await detectBackend({ setting, ...(netns === undefined ? {} : { netns }) });
  } catch (error) {
    // Versions are still worth printing where the kernel cannot be read (no CAP_NET_ADMIN).
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

export async function versionCommand(options: { netns?: string; json: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const json = options.json;
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const v = runtime.versions();
  const report = {
    nodenet: pkg.version,
    addon: v.addon,
    addonPath: v.path,
    napi: v.napi,
    libnl: v.libnl,
    libiptc: v.libiptc,
    libnftnl: v.libnftnl,
    libmnl: v.libmnl,
    node: process.versions.node,
    ...(v.sanitizers ? { sanitizers: v.sanitizers } : {}),
  };
  const backend = await backendReport(options.netns, env);
  if (json) return toJson({ ...report, backend }) + '\n';
  const backendLine =
    'error' in backend
      ? `netfilter backend: unknown (${backend.error})`
      : `netfilter backend: ${backend.backend} (${backend.forced ? 'forced by ' : 'detected: '}${backend.reason})\n` +
        `  evidence: nft hints [${backend.evidence.nftHints.join(', ')}], legacy hints [${backend.evidence.legacyHints.join(', ')}], ` +
        `nft rules ${backend.evidence.nftRules}, legacy rules ${backend.evidence.legacyRules}, legacy tables [${backend.evidence.legacyTables.join(', ')}]` +
        (backend.evidence.nftAvailable ? '' : `, nf_tables unavailable: ${backend.evidence.nftError ?? ''}`);
  return (
    columns(
      ['component', 'version'],
      Object.entries(report).map(([k, val]) => [k, String(val)]),
    ) +
    '\n' +
    backendLine +
    '\n'
  );
}
