import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { runtime } from '../../kernel/index.js';
import { packageRoot } from '../../kernel/native.js';
import { columns, toJson } from '../output.js';

export const versionHelp = `nodenet version [--json]
  Versions of nodenet, its native addon, and the libnl and libiptc it uses.`;

export function versionCommand(json: boolean): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const v = runtime.versions();
  const report = {
    nodenet: pkg.version,
    addon: v.addon,
    addonPath: v.path,
    napi: v.napi,
    libnl: v.libnl,
    libiptc: v.libiptc,
    node: process.versions.node,
    ...(v.sanitizers ? { sanitizers: v.sanitizers } : {}),
  };
  if (json) return toJson(report) + '\n';
  return columns(
    ['component', 'version'],
    Object.entries(report).map(([k, val]) => [k, String(val)]),
  );
}
