#!/usr/bin/env node
// nodenet's command line: thin commands over the kernel API. It never forks.
import { parseArgs } from 'node:util';

import { isKernelError } from '../kernel/index.js';
import { createLogger } from '../log.js';
import { agentCommand, agentHelp } from './commands/agent.js';
import { cleanupCommand, cleanupHelp } from './commands/cleanup.js';
import { diffCommand, diffHelp } from './commands/diff.js';
import { linksCommand, linksHelp } from './commands/links.js';
import { rulesCommand, rulesHelp } from './commands/rules.js';
import { versionCommand, versionHelp } from './commands/version.js';

const HELP = `nodenet: a Kubernetes node network agent

Usage: nodenet <command> [options]

Commands:
${[versionHelp, linksHelp, rulesHelp, agentHelp, diffHelp, cleanupHelp].map((h) => '  ' + h.replace(/\n/g, '\n  ')).join('\n\n')}

  nodenet help, nodenet --help
  This text.

Environment:
  NODENET_LOG_LEVEL       fatal|error|warn|info|debug|trace|silent (default info); logs go to stderr
  NODENET_KERNEL_THREADS  kernel worker threads, 1-16 (default 2)
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      json: { type: 'boolean', default: false },
      netns: { type: 'string' },
      table: { type: 'string', short: 't' },
      family: { type: 'string', default: 'ipv4' },
      counters: { type: 'boolean', short: 'c', default: false },
    },
  });
  const [command, ...extra] = positionals;
  if (values.help || command === undefined || command === 'help') return HELP;
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const netns = values.netns === undefined ? {} : { netns: values.netns };
  switch (command) {
    case 'version':
      return versionCommand({ ...netns, json: values.json });
    case 'links':
      return linksCommand({ ...netns, json: values.json });
    case 'rules': {
      if (values.family !== 'ipv4' && values.family !== 'ipv6') throw new UsageError('--family must be ipv4 or ipv6');
      return rulesCommand({
        ...netns,
        ...(values.table === undefined ? {} : { table: values.table }),
        family: values.family,
        counters: values.counters,
        json: values.json,
      });
    }
    case 'agent':
      return agentCommand(netns);
    case 'diff':
      return diffCommand({ ...netns, json: values.json });
    case 'cleanup':
      return cleanupCommand({ ...netns, json: values.json });
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

const log = createLogger('nodenet-cli');
try {
  process.stdout.write(await main(process.argv.slice(2)));
} catch (error) {
  if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`nodenet: ${(error as Error).message}\nRun "nodenet --help" for usage.\n`);
    process.exitCode = 2;
  } else if (isKernelError(error)) {
    log.debug({ code: error.code, op: error.op, object: error.object, netns: error.netns, extack: error.extack }, error.message);
    process.stderr.write(`nodenet: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    log.error({ err: error }, 'unexpected failure');
    process.stderr.write(`nodenet: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
