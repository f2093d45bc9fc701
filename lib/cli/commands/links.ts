import { links } from '../../kernel/index.js';
import { columns, toJson } from '../output.js';

export const linksHelp = `nodenet links [--netns PATH] [--json]
  The network links of a namespace (default: this process's), read through netlink.`;

export async function linksCommand(options: { netns?: string; json: boolean }): Promise<string> {
  const list = await links.list(options.netns === undefined ? {} : { netns: options.netns });
  if (options.json) return toJson(list) + '\n';
  return columns(
    ['index', 'name', 'kind', 'mtu', 'state', 'master', 'alias', 'flags'],
    list.map((l) => [
      String(l.index),
      l.name,
      l.kind ?? '-',
      String(l.mtu),
      l.operstate,
      l.master ?? '-',
      l.alias ?? '-',
      l.flags.join(','),
    ]),
  );
}
