// The stock-kernel tests (test/vm/tests), run on this machine's kernel, which has neither netem
// nor IPVS: they fail with a message that names the missing feature, and never crash or hang.
import { join } from 'node:path';

import t from 'tap';

import { repoRoot } from '../helpers/dist.js';
import { runAllowingFailure } from '../helpers/exec.js';

async function runOnHost(file: string) {
  return runAllowingFailure(join(repoRoot, 'node_modules', '.bin', 'tap'), ['--reporter=tap', '--disable-coverage', '--timeout=120', join('test', 'vm', 'tests', file)], {
    cwd: repoRoot,
    env: { ...process.env, TAP_CHILD_ID: undefined },
  });
}

t.test('netem tests report the missing qdisc kind', async (t) => {
  const result = await runOnHost('10.netem.test.ts');
  t.equal(result.code, 1, 'tap reports failures, not a crash');
  t.match(result.stdout, /netem is not available in this kernel \(load the sch_netem module\)/);
  t.match(result.stdout, /# \{ total: \d+, pass: \d+, fail: \d+/, 'the run finished with a summary');
});

t.test('IPVS tests report that IPVS is missing', async (t) => {
  const result = await runOnHost('20.ipvs.test.ts');
  t.equal(result.code, 1);
  t.match(result.stdout, /Can't initialize ipvs: Protocol not available/);
});
