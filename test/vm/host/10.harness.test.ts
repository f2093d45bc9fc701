// The VM harness keeps its contract: the stock kernel boots with what the stage needs (netem,
// IPVS, netfilter, bridge, vxlan, the host's node), the command's exit status comes back, a
// command past its timeout ends with 124, and guest writes never reach the host (test/vm/smoke).
import { join } from 'node:path';

import t from 'tap';

import { repoRoot } from '../../helpers/dist.js';
import { runAllowingFailure } from '../../helpers/exec.js';

t.test('test/vm/smoke', async (t) => {
  const result = await runAllowingFailure(join(repoRoot, 'test', 'vm', 'smoke'), [], { cwd: repoRoot });
  const checks = [...result.stdout.matchAll(/^(ok|not ok) - (.*)$/gm)];
  t.ok(checks.length >= 20, `${checks.length} checks ran`);
  for (const [, status, desc] of checks) t.equal(status, 'ok', desc ?? '');
  t.match(result.stdout, /^\d+ passed, 0 failed$/m);
  t.equal(result.code, 0, result.stderr);
});
